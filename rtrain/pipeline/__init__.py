"""Pipelines: stages (synth, train, eval, export) exchanging files in one work folder, cached by fingerprint."""

from rtrain.pipeline.runner import run_pipeline
from rtrain.pipeline.schema import PipelineConfig

__all__ = ["PipelineConfig", "run_pipeline"]
