"""``landslide-tf``: one console script with every command as a subcommand.

``landslide-tf train ...`` is ``python -m landslide_tf.train ...`` (and so on for evaluate,
predict, export, gradcam, experiments, data): the subcommand's own parser reads the rest of
the line, so ``landslide-tf train --help`` shows the train flags. Nothing is imported before a
subcommand is chosen, so ``landslide-tf --help`` starts at once.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module of its ``main``, one line of help).
COMMANDS = {
    "train": ("landslide_tf.cli.train", "train one run (paper, quick, strong, fast presets), then score it"),
    "evaluate": ("landslide_tf.cli.evaluate", "score a run on a split; tune its threshold"),
    "predict": ("landslide_tf.cli.predict", "landslide maps of tiles or whole scenes"),
    "export": ("landslide_tf.cli.export", "write a run as a SavedModel that plain TensorFlow loads"),
    "gradcam": ("landslide_tf.cli.gradcam", "GradCAM maps of a run"),
    "experiments": ("landslide_tf.cli.experiments", "the paper's study and other studies"),
    "data": ("landslide_tf.cli.data", "check, synthesise or chip datasets"),
}  # fmt: skip


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: landslide-tf COMMAND [ARGS...]",
        "",
        "Landslide segmentation with U-Net-family networks (Keras 3 / TensorFlow).",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "landslide-tf COMMAND --help shows the flags of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand's ``main``; its exit code is returned."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:  # a usage error as every parser says one: one line on stderr, exit 2
        print(f"error: give a command: {', '.join(COMMANDS)} (see --help)", file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        from landslide_tf import __version__

        print(f"landslide-tf {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; expected one of {', '.join(COMMANDS)} "
              "(see --help)", file=sys.stderr)  # fmt: skip
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
