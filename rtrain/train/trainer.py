"""Driver side of `rtrain train`: validate data, plan steps, build the TorchTrainer, fit, export."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import ray
import ray.train
from ray.train.torch import TorchTrainer

from rtrain.config.load import ConfigError, dump_yaml, resolve_job
from rtrain.config.schema import JobConfig
from rtrain.data.dataset import build_train_dataset
from rtrain.data.files import validate_pair_files
from rtrain.models.loading import resolve_model_path
from rtrain.train.checkpoint import SCORE, best_checkpoint
from rtrain.train.loop import CRASH_ENV, TrainPlan, train_loop_per_worker

log = logging.getLogger("rtrain")

JOB_FILE = "job.yaml"


@dataclass
class TrainOutcome:
    run_dir: Path
    checkpoint: Path
    metrics: dict[str, float]
    model_dir: Path | None


def plan_training(cfg: JobConfig, rows: int, run_dir: Path) -> TrainPlan:
    """Optimizer steps per epoch and in total, from the row count and the batch geometry."""
    world, per_worker = cfg.scaling.num_workers, cfg.train.batch_size_per_worker
    accum = cfg.train.gradient_accumulation_steps
    steps_per_epoch = (rows // world // per_worker) // accum  # each worker gets rows // world (equal split)
    if steps_per_epoch == 0:
        raise ConfigError(
            f"{rows} training pairs cannot fill one optimizer step of scaling.num_workers={world} x "
            f"train.batch_size_per_worker={per_worker} x train.gradient_accumulation_steps={accum} "
            f"= {world * per_worker * accum} pairs: lower these or add data"
        )
    total = cfg.train.max_steps or cfg.train.epochs * steps_per_epoch
    crash = os.environ.get(CRASH_ENV)
    return TrainPlan(
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
        run_dir=str(run_dir),
        rows=rows,
        crash_at_step=int(crash) if crash else None,
    )


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


def train(cfg: JobConfig, resume: Path | None = None) -> TrainOutcome:
    """Train `cfg` on Ray (a fresh run, or continue the run at `resume`); export when configured."""
    resolve_model_path(cfg.model.name_or_path)  # a bad model path fails here, before any worker starts
    files, stats = validate_pair_files(cfg.data.train_files, cfg.loss.negatives_per_query)
    log.info(stats.summary())
    if resume is None:
        run_dir = run_dir_for(cfg)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ConfigError(
                f"run dir {run_dir} already exists: continue it with --resume {run_dir}, or set output.name"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / JOB_FILE).write_text(dump_yaml(cfg))
    else:
        run_dir = resume
    plan = plan_training(cfg, stats.rows, run_dir)
    log.info(
        f"run dir {run_dir}: {plan.total_steps} steps ({plan.steps_per_epoch}/epoch), global batch "
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
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=cfg.output.num_checkpoints_to_keep,
                checkpoint_score_attribute=SCORE if cfg.eval is not None else None,
                checkpoint_score_order="max",
            ),
        ),
        datasets={"train": build_train_dataset(files, cfg)},
    )
    result = trainer.fit()
    checkpoint = best_checkpoint(run_dir)
    metrics = dict(result.metrics or {})
    model_dir = None
    if cfg.output.export:
        from rtrain.export import export_model

        model_dir = export_model(checkpoint, run_dir / "model")
        log.info(f"exported sentence-transformers model: {model_dir}")
    return TrainOutcome(run_dir=run_dir, checkpoint=checkpoint, metrics=metrics, model_dir=model_dir)


def resume_job(run_dir: Path, overrides: list[str]) -> JobConfig:
    """The job a run was started with (its `job.yaml`), plus overrides, for --resume."""
    path = Path(run_dir) / JOB_FILE
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: {JOB_FILE} not found; pass the run dir that `rtrain train` printed")
    return resolve_job(path, overrides)
