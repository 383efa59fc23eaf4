"""Errors meant for people: one line, naming the file and what was expected.

Command-line entry points catch ``UserError``, print ``error: <message>`` and exit 2.
"""


class UserError(Exception):
    """A problem with the user's input or arguments, reported as one line."""


class DataError(UserError, ValueError):
    """A dataset that cannot be read as the Bijie layout, with the file and the expectation."""
