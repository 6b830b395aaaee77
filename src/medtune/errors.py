"""Errors a user can cause. Entry points print them as one line instead of a traceback."""


class MedtuneError(Exception):
    """Base class: the message is the whole story, shown to the user as is."""


class ConfigError(MedtuneError):
    """A params.yaml value is wrong; the message names the key (`params.yaml: train.lr: ...`)."""


class DataError(MedtuneError):
    """Input data cannot be used (missing labels file, empty cohort, broken split file)."""


class TestSetLockedError(MedtuneError):
    """The held-out test set was already scored for this model version and split."""

    __test__ = False  # not a pytest class, despite the name
