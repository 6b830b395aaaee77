"""Hyperparameter search: the space (Optuna, no Ray) and the runner (the only module that imports Ray)."""
