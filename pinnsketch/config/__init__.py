"""The run configuration: schema (frozen dataclasses) and loading (YAML, ``--set``)."""
from pinnsketch.config.fields import build_section
from pinnsketch.config.load import config_from_dict, config_to_dict, load_config
from pinnsketch.config.schema import (DTYPES, CausalConfig, ModelConfig, MonitorConfig, ObservationConfig,
                                      OutputConfig, ProblemConfig, RunConfig, SamplingConfig,
                                      TermGradientConfig, TrainConfig)

__all__ = ["DTYPES", "CausalConfig", "ModelConfig", "MonitorConfig", "ObservationConfig", "OutputConfig",
           "ProblemConfig", "RunConfig", "SamplingConfig", "TermGradientConfig", "TrainConfig",
           "build_section", "config_from_dict", "config_to_dict", "load_config"]
