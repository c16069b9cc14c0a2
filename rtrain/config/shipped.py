"""Validate any YAML the project ships (jobs/, tuning/) by the schema its top-level keys announce."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from rtrain.config.load import load_yaml, resolve, resolve_job


def resolve_any(path: str | Path) -> BaseModel:
    """A pipeline (has `stages`), an eval suite (has `tasks`) or a training job, validated; ConfigError on any problem."""
    data = load_yaml(path)
    if "stages" in data:
        from rtrain.pipeline.schema import PipelineConfig

        return resolve(PipelineConfig, path)
    if "tasks" in data:
        from rtrain.eval.suite import load_suite

        return load_suite(path)
    return resolve_job(path)
