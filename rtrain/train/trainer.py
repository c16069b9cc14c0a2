"""Driver side of `rtrain train`: validate data, plan steps, build the TorchTrainer, fit, export."""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import ray
import ray.train
from ray.train.torch import TorchTrainer

from rtrain import console
from rtrain.checkpoint import (
    EXPORT_DIR,
    JOB_FILE,
    SCORE,
    Selection,
    best_checkpoint,
    checkpoints,
    job_file,
    load_job,
    load_trainer_state,
    selection,
    write_job,
)
from rtrain.config.load import ConfigError
from rtrain.config.schema import JobConfig
from rtrain.data.dataset import build_rank_datasets
from rtrain.data.layout import MIX_DIR, MixPlan, mix_summary, plan_mix
from rtrain.models.loading import resolve_model_path
from rtrain.models.unpadded import config_unpadded_error
from rtrain.train.loop import TrainPlan, train_loop_per_worker
from rtrain.train.progress import train_progress

log = logging.getLogger("rtrain")


@dataclass
class TrainOutcome:
    run_dir: Path
    checkpoint: Path
    metrics: dict[str, float]
    model_dir: Path | None
    selection: Selection | None = None  # the selected checkpoint vs the base model, when eval scored both


def plan_training(cfg: JobConfig, run_dir: Path) -> tuple[TrainPlan, MixPlan]:
    """Plan the data (every epoch's batches, one stream per rank, under `<run dir>/data`) and the steps."""
    mix = plan_mix(cfg, cfg.scaling.num_workers, run_dir / MIX_DIR)
    plan = TrainPlan(
        total_steps=mix.total_steps,
        epoch_ends=mix.epoch_ends,
        run_dir=str(run_dir),
        rows=mix.rows_per_epoch,
        groups=mix.groups,
        data_mix=mix.manifest,
    )
    return plan, mix


def run_dir_for(cfg: JobConfig) -> Path:
    """`<storage_path>/<name>`, naming the run `<job name>-<timestamp>` when no name is set."""
    name = cfg.output.name or f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Path(cfg.output.storage_path).expanduser().resolve() / name


def init_ray(cfg: JobConfig) -> None:
    """Join the configured cluster, or start a local Ray with the data context set for training."""
    if not ray.is_initialized():
        ray.init(address=cfg.scaling.address, log_to_driver=True, configure_logging=False)
    ray.data.DataContext.get_current().execution_options.preserve_order = True  # resumable data position
    ray.data.DataContext.get_current().enable_progress_bars = False


def train(
    cfg: JobConfig, resume: Path | None = None, callbacks: list[ray.train.UserCallback] | None = None
) -> TrainOutcome:
    """Train `cfg` on Ray (a fresh run, or continue the run at `resume`); export when configured.

    `callbacks` run on the Ray Train controller (e.g. a Tune trial forwards each report to Tune).
    """
    model_path = resolve_model_path(cfg.model.name_or_path)  # a bad model path fails here, before any worker starts
    if cfg.model.unpadded and (message := config_unpadded_error(model_path, cfg.model.name_or_path)) is not None:
        raise ConfigError(message)
    if cfg.eval is not None:  # a missing or bad suite fails here, not inside the rank-0 worker
        from rtrain.eval.suite import load_suite

        load_suite(cfg.eval.suite, cfg.eval.overrides)
    if resume is None:
        run_dir = run_dir_for(cfg)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ConfigError(
                f"run dir {run_dir} already exists: continue it with --resume {run_dir}, or set output.name"
            )
        made = next((p for p in (*reversed(run_dir.parents), run_dir) if not p.exists()), None)
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            plan, mix = plan_training(cfg, run_dir)  # reads and checks every row before the run is recorded
        except BaseException:
            if made is not None:  # the folders this call made (planning wrote only data/): the rerun is new
                shutil.rmtree(made, ignore_errors=True)
            raise
        write_job(run_dir, cfg)
    else:
        run_dir = resume
        plan, mix = plan_training(cfg, run_dir)  # deterministic: a resumed run re-plans the same streams
    console.attach_log(run_dir / console.LOG_NAME)  # `rtrain train`'s log (a pipeline has attached its own)
    log.info(mix_summary(mix))
    log.info(
        f"run dir {run_dir}: {plan.total_steps} steps ({len(plan.epoch_ends)} epoch(s)), global batch "
        f"{cfg.scaling.num_workers * cfg.train.batch_size_per_worker * cfg.train.gradient_accumulation_steps}, "
        f"backend {cfg.train.backend}"
        + (f" ZeRO-{cfg.deepspeed.zero_stage}" if cfg.train.backend == "deepspeed" else "")
    )

    init_ray(cfg)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"job": cfg.model_dump(mode="json"), "plan": asdict(plan)},
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.scaling.num_workers,
            use_gpu=cfg.scaling.use_gpu,
            resources_per_worker={"CPU": cfg.scaling.cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=run_dir.name,
            storage_path=str(run_dir.parent),
            failure_config=ray.train.FailureConfig(max_failures=cfg.scaling.max_failures),
            callbacks=list(callbacks or []),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=cfg.output.num_checkpoints_to_keep,
                checkpoint_score_attribute=SCORE if cfg.eval is not None else None,
                checkpoint_score_order="max",
            ),
        ),
        datasets=build_rank_datasets(mix.files, cfg, _trained_rows(run_dir, cfg) if resume is not None else 0),
        dataset_config=ray.train.DataConfig(datasets_to_split=[]),  # each rank reads its own planned stream
    )
    with train_progress(run_dir, plan.total_steps):
        try:
            result = trainer.fit()
        except ray.train.WorkerGroupError as err:
            if (message := out_of_memory(str(err), cfg, run_dir)) is not None:
                raise ConfigError(message) from None
            raise
    checkpoint = best_checkpoint(run_dir)
    chosen = selection(run_dir, checkpoint)
    if chosen is not None:
        (log.info if chosen.beats_base else log.warning)(chosen.describe())
    metrics = dict(result.metrics or {})
    model_dir = None
    if cfg.output.export:
        from rtrain.export import export_model

        model_dir = export_model(checkpoint, run_dir / EXPORT_DIR)
        log.info(f"exported sentence-transformers model: {model_dir}")
    return TrainOutcome(run_dir=run_dir, checkpoint=checkpoint, metrics=metrics, model_dir=model_dir, selection=chosen)


RAY_OOM = re.compile(r"killed due to the node running low on memory.*?was ([\d.]+)GB used / ([\d.]+)GB limit", re.S)


def out_of_memory(error_text: str, cfg: JobConfig, run_dir: Path) -> str | None:
    """The one-line error for workers Ray's memory monitor killed (a batch too large for the node), with the
    settings that shrink a worker's memory; None for any other worker failure."""
    found = RAY_OOM.search(error_text)
    if found is None:
        return None
    used, limit = found.groups()
    cached = (
        f"lower loss.mini_batch_size (now {cfg.loss.mini_batch_size})"
        if cfg.loss.cached
        else "set loss.cached: true (GradCache) with a small loss.mini_batch_size, e.g. 8"
    )
    return (
        f"Ray killed the training workers: the node ran out of memory ({used} GB used of {limit} GB). Shrink a "
        f"worker's memory: {cached}; or lower train.batch_size_per_worker (now {cfg.train.batch_size_per_worker}; "
        f"train.gradient_accumulation_steps keeps the global batch), or run fewer workers per node "
        f"(scaling.num_workers={cfg.scaling.num_workers}). Run dir: {run_dir}"
    )


def registered_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint Ray Train resumes `run_dir` from, or None when it has none.

    Ray's own record says which one that is, not the folders on disk: a checkpoint written just before a
    kill may never have been registered, and Ray then resumes from the one before it.
    """
    try:
        registered = ray.train.Result.from_path(str(run_dir.resolve())).checkpoint
    except RuntimeError:  # no checkpoint_manager_snapshot.json: Ray has nothing to resume from
        return None
    return None if registered is None else Path(registered.path)


def _trained_rows(run_dir: Path, cfg: JobConfig) -> int:
    """Rows of each rank's stream that the checkpoint Ray Train resumes from trained on (0: none yet)."""
    registered = registered_checkpoint(run_dir) if checkpoints(run_dir) else None
    if registered is None:
        return 0
    return load_trainer_state(registered)["batches_done"] * cfg.train.batch_size_per_worker


def resume_job(run_dir: Path, overrides: list[str]) -> JobConfig:
    """The job a run was started with (the job file in its run dir), plus overrides, for --resume."""
    if not job_file(run_dir).is_file():
        raise ConfigError(f"--resume {run_dir}: {JOB_FILE} not found; pass the run dir that `rtrain train` printed")
    return load_job(run_dir, overrides)
