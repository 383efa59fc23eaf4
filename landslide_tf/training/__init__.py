"""Training one run: the config and its one check, presets, optimiser, precision,
distribution, the fit loop with its callbacks, and the run directory's crash-safe state.
"""
