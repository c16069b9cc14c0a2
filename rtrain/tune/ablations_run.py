"""Run the three ablation studies (hard negatives, diversity, data scale) in turn and write the findings report.

`rtrain tune tuning/paper_ablations.yaml` lands here: each study runs as `rtrain tune` would run it,
in `<storage_path>/<name>/<study>`; `--resume` skips studies that finished and continues the one
that was interrupted; then `rtrain.tune.report` writes the report.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rtrain import console
from rtrain.models.encoder import build_encoder
from rtrain.train.evaluation import SuiteEvaluator
from rtrain.train.job_paths import absolute_paths
from rtrain.tune.ablations import Ablations
from rtrain.tune.report import write_report
from rtrain.tune.results import StudyOutcome
from rtrain.tune.runner import is_done, load_results, run_study, wall_seconds
from rtrain.tune.study import Study

log = logging.getLogger("rtrain.tune")


def base_scores(study: Study) -> dict[str, float]:
    """The untrained base model on the study's eval suite: the same metrics training reports."""
    job = absolute_paths(study.job({}), study.cwd)
    if job.eval is None:
        return {}
    encoder, tokenizer = build_encoder(job.model, job.lora.model_copy(update={"enabled": False}))
    evaluator = SuiteEvaluator(job.eval, str(study.study_dir.parent / "base_model"))
    return evaluator(encoder, tokenizer, 0)


def run_ablations(ablations: Ablations, resume: bool = False) -> Path:
    """Run (or finish) the three studies, then write the report; returns the report's README path."""
    outcomes: dict[str, StudyOutcome] = {}
    console.attach_log(ablations.folder / console.LOG_NAME)  # one log for every study
    for key, study in ablations.studies.items():
        started = study.study_dir.is_dir() and any(study.study_dir.iterdir())
        if resume and is_done(study):
            log.info(f"[{key}] finished before: reading its results from {study.study_dir}")
            outcomes[key] = load_results(study)
            continue
        log.info(f"[{key}] study {study.config.name} -> {study.study_dir}")
        outcomes[key] = run_study(study, resume=resume and started)
        if outcomes[key].interrupted:
            raise StudyInterrupted(f"study {study.config.name} was interrupted: continue with --resume")
    timings = {key: wall_seconds(study) for key, study in ablations.studies.items()}
    base = base_scores(ablations.studies["negatives"]) if ablations.config.compare_base else {}
    return write_report(ablations, outcomes, base, timings)


class StudyInterrupted(RuntimeError):
    """A study stopped before all its trials finished (Ctrl-C); `--resume` continues it."""
