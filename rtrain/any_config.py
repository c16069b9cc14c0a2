"""Validate any YAML the project ships (jobs/, tuning/) by the schema its top-level keys announce."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from rtrain.config.load import load_yaml, resolve, resolve_job


def resolve_any(path: str | Path) -> BaseModel:
    """The file validated by the schema its top-level keys announce; ConfigError on any problem.

    `search_space`: a Tune study; `studies`: an ablations file; `stages`: a pipeline; `tasks`: an eval
    suite; `sources`: a corpus spec (`rtrain pairs`); `backend`: an LLM generator config; else a job.
    """
    data = load_yaml(path)
    if "search_space" in data:  # a Tune study (rtrain tune): the study, every variant, each axis against the job
        from rtrain.tune.study import validate_study_file

        return validate_study_file(path)[0].config
    if "studies" in data:  # an ablations file (rtrain tune): its studies and report, in every variant
        from rtrain.tune.ablations import validate_ablations_file

        return validate_ablations_file(path)
    if "stages" in data:
        from rtrain.pipeline.schema import PipelineConfig

        return resolve(PipelineConfig, path)
    if "tasks" in data:
        from rtrain.eval.suite import load_suite

        return load_suite(path)
    if "sources" in data:  # a corpus spec (rtrain pairs); training jobs nest their sources under data:
        from rtrain.pairs.spec import load_spec

        return load_spec(path)
    if "backend" in data:  # an LLM synthetic-data config (rtrain synth-llm)
        from rtrain.synth.llm.config import LLMSynthConfig

        return resolve(LLMSynthConfig, path)
    return resolve_job(path)
