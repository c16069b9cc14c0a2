"""Run a study on Ray Tune, or continue an interrupted one, and write its results.

The study folder `<storage_path>/<name>/` holds `study.yaml` (the resolved study), `tune/` (Tune's
experiment state, restored by `--resume`), `runs/<trial_id>/` (each trial's rtrain run),
`trials/<trial_id>.json` (trial records) and the results (see rtrain.tune.results).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import ray
import yaml
from ray import tune

from rtrain import console
from rtrain.config.load import ConfigError
from rtrain.tune.cleanup import MarkEndedTrials, ReleaseEndedTrials
from rtrain.tune.progress import TrialLines
from rtrain.tune.results import StudyOutcome, expected_trials, write_results
from rtrain.tune.space import param_space, scheduler, search_algorithm
from rtrain.tune.study import Study
from rtrain.tune.trial import RECORDS_DIR, TrialContext, run_trial

log = logging.getLogger("rtrain.tune")

STUDY_FILE = "study.yaml"
TUNE_DIR = "tune"
DONE_FILE = "study_done.json"
WALL_FILE = "wall_time.json"


def prepare_data(study: Study) -> None:
    """Generate the study's synthetic datasets once; every trial (and every study sharing them) reads these."""
    from rtrain.synth.generate import MANIFEST, generate

    for name, path in study.synth_dirs().items():
        if (path / MANIFEST).is_file():
            log.info(f"synth dataset {name!r}: reusing {path}")
            continue
        log.info(f"synth dataset {name!r}: generating into {path}")
        generate(study.config.synth[name], path)


def init_ray(study: Study) -> None:
    """Join the job's cluster (scaling.address), or start a local Ray."""
    if not ray.is_initialized():
        ray.init(address=study.job({}).scaling.address, configure_logging=False)


def trial_cpus(study: Study) -> float:
    """The most CPU one trial reserves: its function plus its Train workers (largest swept scaling values)."""
    jobs = [study.job({})]
    for key, dist in study.config.search_space.items():
        if key.startswith("scaling.") and dist.kind in ("grid", "choice"):
            jobs += [study.job({key: value}) for value in dist.values]
    workers = max(job.scaling.num_workers * job.scaling.cpus_per_worker for job in jobs)
    return workers + study.config.trial.driver_cpus


def check_cpu_headroom(study: Study) -> None:
    """Refuse a concurrency that leaves Ray Data no whole CPU: its read tasks need one, or every trial hangs."""
    total = float(ray.cluster_resources().get("CPU", 0.0))
    reserved = study.config.max_concurrent_trials * trial_cpus(study)
    if total - reserved < 1.0:
        raise ConfigError(
            f"{study.config.max_concurrent_trials} concurrent trial(s) x {trial_cpus(study):g} CPU = {reserved:g} of "
            f"this Ray's {total:g} CPUs leaves less than 1 CPU for Ray Data's read tasks, so the trials would wait "
            "forever for data: lower max_concurrent_trials, trial.num_workers or trial.cpus_per_worker"
        )


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(data, default=str))
    return {k: v for k, v in data.items() if k not in ("description", "variants")}


def _check_unchanged(study: Study, saved: Path) -> None:
    """Refuse to resume with a study that differs from the one the folder was started with."""
    before = _comparable(yaml.safe_load(saved.read_text()) or {})
    now = _comparable(study.config.model_dump(mode="json"))
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if changed:
        raise ConfigError(
            f"study {study.config.name}: {changed} differ from {saved}, the study this folder was started with: "
            "resume with the same file (and variant), or start a new study with name=<new name>"
        )


def _dirname(trial: Any) -> str:
    return str(trial.trial_id)


def _tuner(study: Study, trainable: Any) -> tune.Tuner:
    cfg = study.config
    return tune.Tuner(
        trainable,
        param_space=param_space(cfg),
        tune_config=tune.TuneConfig(
            metric=cfg.metric,
            mode=cfg.mode,
            search_alg=search_algorithm(cfg),
            scheduler=scheduler(cfg.scheduler),
            num_samples=cfg.num_samples,
            max_concurrent_trials=None if cfg.search_alg in ("grid", "random") else cfg.max_concurrent_trials,
            time_budget_s=cfg.time_budget_s,
            trial_dirname_creator=_dirname,
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=str(study.study_dir),
            failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
            callbacks=[
                ReleaseEndedTrials(study.study_dir / RECORDS_DIR),
                MarkEndedTrials(study.study_dir / RECORDS_DIR),
                TrialLines(cfg.metric, cfg.mode, expected_trials(study), study.study_dir / RECORDS_DIR),
            ],
            verbose=1,  # Tune's status tables: in the study's log under `rtrain tune`, whose console has TrialLines
        ),
    )


def run_study(study: Study, resume: bool = False, retry_failed: bool = False) -> StudyOutcome:
    """Run every trial (or, with `resume`, the ones an interrupted run left), then write the results.

    `retry_failed` (with `resume`) also reruns trials that had failed for good.
    """
    cfg = study.config
    folder, saved, tune_dir = study.study_dir, study.study_dir / STUDY_FILE, study.study_dir / TUNE_DIR
    if resume:
        if not saved.is_file() or not tune.Tuner.can_restore(str(tune_dir)):
            raise ConfigError(
                f"nothing to resume in {folder}: no Tune state there (the study never started a trial); "
                "run without --resume (remove the folder first if it exists)"
            )
        _check_unchanged(study, saved)
    elif folder.exists() and any(folder.iterdir()):
        raise ConfigError(
            f"study folder {folder} exists: continue it with --resume, start another with name=<new name>, or remove it"
        )
    folder.mkdir(parents=True, exist_ok=True)
    console.attach_log(folder / console.LOG_NAME)  # `rtrain tune`'s log (an ablations run has attached its own)
    if not resume:
        saved.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    (folder / DONE_FILE).unlink(missing_ok=True)
    prepare_data(study)
    init_ray(study)
    check_cpu_headroom(study)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, ctx=TrialContext(study=study, metric=cfg.metric)),
        {"CPU": cfg.trial.driver_cpus},
    )
    started = time.time()
    if resume:
        tuner = tune.Tuner.restore(str(tune_dir), trainable, resume_unfinished=True, restart_errored=retry_failed)
    else:
        tuner = _tuner(study, trainable)
    try:
        grid = tuner.fit()
    finally:
        wall = _add_wall(folder, time.time() - started)
    outcome = write_results(study, grid)
    if not outcome.interrupted:
        (folder / DONE_FILE).write_text(json.dumps({"finished": time.time(), "wall_s": wall}))
    log.info(f"study {cfg.name}: {len(outcome.table)} trials, {wall:.0f} s of wall time; results in {folder}")
    return outcome


def _add_wall(folder: Path, seconds: float) -> float:
    """Add one session's wall time to the study's total (a resumed study counts every session)."""
    path = folder / WALL_FILE
    total = (json.loads(path.read_text())["wall_s"] if path.is_file() else 0.0) + seconds
    path.write_text(json.dumps({"wall_s": total}))
    return total


def wall_seconds(study: Study) -> float:
    """The study's wall time over all its sessions."""
    path = study.study_dir / WALL_FILE
    return json.loads(path.read_text())["wall_s"] if path.is_file() else 0.0


def is_done(study: Study) -> bool:
    """True when the study's folder holds a finished study."""
    return (study.study_dir / DONE_FILE).is_file()


def load_results(study: Study) -> StudyOutcome:
    """Rewrite and return the results of a finished study from its Tune state, running nothing."""
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, ctx=TrialContext(study=study, metric=study.config.metric)),
        {"CPU": study.config.trial.driver_cpus},
    )
    init_ray(study)
    return write_results(study, tune.Tuner.restore(str(study.study_dir / TUNE_DIR), trainable).get_results())
