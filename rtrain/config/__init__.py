"""Job configuration: per-concern schemas and the one resolution path (YAML + overrides)."""

from rtrain.config.load import ConfigError, apply_overrides, dump_yaml, resolve, resolve_job
from rtrain.config.schema import (
    DataConfig,
    DeepSpeedConfig,
    JobConfig,
    LoggingConfig,
    LoraConfig,
    LossConfig,
    ModelConfig,
    OutputConfig,
    ScalingConfig,
    TrainConfig,
)

__all__ = [
    "ConfigError",
    "DataConfig",
    "DeepSpeedConfig",
    "JobConfig",
    "LoggingConfig",
    "LoraConfig",
    "LossConfig",
    "ModelConfig",
    "OutputConfig",
    "ScalingConfig",
    "TrainConfig",
    "apply_overrides",
    "dump_yaml",
    "resolve",
    "resolve_job",
]
