"""Typed view of params.yaml: one frozen dataclass per section, validated once on load.

Everything below the stage entry points takes these dataclasses (or plain arguments), never the YAML,
so a bad value fails here with one line naming the key instead of deep inside a library.
`sections` holds the dataclasses, `space` the search-space entries, `rules` the checks, `load` the reader.
"""

from medtune.config.load import load_params, parse_params, require_path
from medtune.config.rules import check_train_values
from medtune.config.sections import (
    BaseCfg,
    IngestCfg,
    Params,
    ParamSpec,
    PreprocessCfg,
    RegistryCfg,
    SearchCfg,
    SplitCfg,
    TestCfg,
    TrainCfg,
)
from medtune.config.space import largest

__all__ = [
    "BaseCfg", "IngestCfg", "ParamSpec", "Params", "PreprocessCfg", "RegistryCfg", "SearchCfg", "SplitCfg",
    "TestCfg", "TrainCfg", "check_train_values", "largest", "load_params", "parse_params", "require_path",
]
