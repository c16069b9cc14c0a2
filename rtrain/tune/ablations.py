"""Run the three ablation studies (hard negatives, diversity, data scale) in turn and write the findings report.

`rtrain tune tuning/paper_ablations.yaml` lands here: each study runs as `rtrain tune` would run it,
in `<storage_path>/<name>/<study>`; `--resume` skips studies that finished and continues the one
that was interrupted; then `rtrain.tune.report` writes the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pydantic import ValidationError

from rtrain.config.load import ConfigError, format_validation_error, load_yaml, read_source
from rtrain.tune.results import StudyOutcome
from rtrain.tune.schema import AblationsConfig
from rtrain.tune.study import Study, load_study, select_variant

log = logging.getLogger("rtrain.tune")

FINDINGS = ("negatives", "diversity", "data_scale")


@dataclass
class Ablations:
    """A validated ablations file and its three loaded studies."""

    config: AblationsConfig
    where: str
    studies: dict[str, Study]
    cwd: Path

    @property
    def folder(self) -> Path:
        return (self.cwd / self.config.storage_path).resolve() / self.config.name

    @property
    def report_dir(self) -> Path:
        return (self.cwd / self.config.report_dir).resolve()


def load_ablations(
    source: str | Path | Mapping[str, Any],
    variant: str | None = None,
    overrides: Sequence[str] = (),
    cwd: Path | None = None,
) -> Ablations:
    """Validate the file, then load each study (its variant, its overrides, then the CLI's) under one folder."""
    data, where = read_source(source, "ablations")
    data = select_variant(data, variant, where)
    try:
        config = AblationsConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, AblationsConfig, where)) from None
    cwd = cwd or Path.cwd()
    base_dir = Path(source).parent if isinstance(source, (str, Path)) else cwd
    storage = (cwd / config.storage_path).resolve() / config.name
    studies = {}
    for key in FINDINGS:
        ref = getattr(config.studies, key)
        path = Path(ref.path) if Path(ref.path).is_file() else base_dir / ref.path
        if not path.is_file():
            raise ConfigError(f"{where}: studies.{key}.path = {ref.path!r} not found (nor under {base_dir})")
        studies[key] = load_study(path, config.variant, [*ref.overrides, *overrides, f"storage_path={storage}"], cwd)
    return Ablations(config=config, where=where, studies=studies, cwd=cwd)


def base_scores(study: Study) -> dict[str, float]:
    """The untrained base model on the study's eval suite: the same metrics training reports."""
    from rtrain.models.encoder import build_encoder
    from rtrain.train.evaluation import SuiteEvaluator
    from rtrain.train.job_paths import absolute_paths

    job = absolute_paths(study.job({}), study.cwd)
    if job.eval is None:
        return {}
    encoder, tokenizer = build_encoder(job.model, job.lora.model_copy(update={"enabled": False}))
    evaluator = SuiteEvaluator(job.eval, str(study.study_dir.parent / "base_model"))
    return evaluator(encoder, tokenizer, 0)


def run_ablations(ablations: Ablations, resume: bool = False) -> Path:
    """Run (or finish) the three studies, then write the report; returns the report's README path."""
    from rtrain.tune.report import write_report
    from rtrain.tune.runner import is_done, load_results, run_study, wall_seconds

    outcomes: dict[str, StudyOutcome] = {}
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


def validate_ablations_file(path: str | Path) -> AblationsConfig:
    """The ablations file at its top level and in every variant, with all its studies (for shipped-file checks)."""
    for variant in load_yaml(path).get("variants") or {}:
        load_ablations(path, variant)
    return load_ablations(path).config
