"""Inference from a trained run: one ``Predictor`` for every input spec, TTA, scenes, export
to a SavedModel with its serving signature, and the model card.
"""
