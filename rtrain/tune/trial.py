"""The Tune function behind every trial: resolve the trial's job, launch its Ray Train run, forward its reports.

With Ray Train v2 a `TorchTrainer` cannot itself be a Tune trainable; Ray's pattern is a Tune
function that builds and fits one `TorchTrainer` per trial, with `TuneReportCallback` on the Train
run so the controller passes each worker report to the trial. Here that function is `run_trial`.

Each trial's Train run lives in `<study>/runs/<trial_id>` (checkpoints, training log, eval,
W&B files) and its record in `<study>/trials/<trial_id>.json` (sampled values, attempts, outcome).
A retried trial (Tune `max_failures`) or a trial continued by `--resume` finds its run folder and
resumes the Train run from its latest checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback

from rtrain.config.schema import JobConfig
from rtrain.train.job_paths import absolute_paths
from rtrain.tune.cleanup import RecordPlacementGroups, groups_file
from rtrain.tune.study import Study

log = logging.getLogger("rtrain.tune")

RUNS_DIR = "runs"  # <study>/runs/<trial_id>: the trial's rtrain run dir
RECORDS_DIR = "trials"  # <study>/trials/<trial_id>.json: what the trial was and how it ended


class ForwardReports(TuneReportCallback):
    """Pass the Train run's reports that carry the study metric on to Tune (ASHA's rungs read them).

    Reports without the metric (checkpoints between evaluations) would give Tune results it cannot
    rank, so they stay in the Train run only.
    """

    def __init__(self, metric: str) -> None:
        super().__init__()
        self.metric = metric

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        if metrics and self.metric in metrics[0]:
            super().after_report(run_context, metrics, checkpoint)


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a study shares, shipped to the trial processes."""

    study: Study
    metric: str

    @property
    def runs_dir(self) -> Path:
        return self.study.study_dir / RUNS_DIR

    @property
    def records_dir(self) -> Path:
        return self.study.study_dir / RECORDS_DIR


def trial_tags(study_name: str, sampled: Mapping[str, Any]) -> list[str]:
    """W&B tags: the study, then `key=value` for each short sampled value."""
    tags = [study_name]
    for key, value in sampled.items():
        tag = f"{key}={value}"
        if len(tag) <= 64:  # W&B's tag length limit
            tags.append(tag)
    return tags


def trial_job(ctx: TrialContext, sampled: Mapping[str, Any], trial_id: str) -> JobConfig:
    """The trial's job: the study's job with the sampled values, its own run folder and W&B grouping."""
    study = ctx.study
    base = study.job({})
    base_tags = list(base.logging.tags)
    extra = {
        "output.storage_path": str(ctx.runs_dir),
        "output.name": trial_id,
        "logging.group": study.config.wandb.group or study.config.name,
        "logging.tags": base_tags + trial_tags(study.config.name, sampled),
    }
    if base.eval is not None:  # a trial is scored as trained: the study scores the base once (compare_base)
        extra["eval.baseline"] = False
    return absolute_paths(study.job(sampled, extra, where=f"trial {trial_id}"), study.cwd)


def read_record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(path)


def run_trial(config: dict[str, Any], ctx: TrialContext) -> None:
    """Tune function: train the trial's job on Ray Train, forwarding reports that carry the metric."""
    from rtrain.checkpoint import job_file
    from rtrain.train.trainer import run_dir_for, train

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.chdir(ctx.study.cwd)  # Tune moved us into the trial folder; the job's paths are relative to the study's cwd
    trial_id = tune.get_context().get_trial_id()
    record_path = ctx.records_dir / f"{trial_id}.json"
    record = read_record(record_path)
    record.update(trial_id=trial_id, sampled=config, attempts=record.get("attempts", 0) + 1)
    record.setdefault("started", time.time())
    record.pop("error", None)
    _write_record(record_path, record)
    try:
        cfg = trial_job(ctx, config, trial_id)
        run_dir = run_dir_for(cfg)
        record["run_dir"] = str(run_dir)
        _write_record(record_path, record)
        resume = run_dir if job_file(run_dir).is_file() else None
        if resume is not None:
            log.info(f"trial {trial_id}: attempt {record['attempts']}, resuming {run_dir}")
        callbacks = [ForwardReports(ctx.metric), RecordPlacementGroups(str(groups_file(ctx.records_dir, trial_id)))]
        outcome = train(cfg, resume=resume, callbacks=callbacks)
    except BaseException as err:  # recorded, then re-raised for Tune to retry or mark failed
        record["error"] = f"{type(err).__name__}: {err}"
        _write_record(record_path, record)
        raise
    record.update(finished=time.time(), checkpoint=str(outcome.checkpoint), metrics=outcome.metrics)
    _write_record(record_path, record)
