"""Evaluation of trained runs: whole-split metrics and threshold tuning (``evaluate``) and the
figures drawn from runs (``plots``).
"""
