"""`rtrain run PIPELINE.yaml`: run the stages in order, skipping those whose inputs and config are unchanged."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rtrain.config.load import ConfigError, resolve_job
from rtrain.config.schema import JobConfig
from rtrain.pipeline import cache
from rtrain.pipeline.evaluate import run_eval
from rtrain.pipeline.schema import (
    EvalStage,
    ExportStage,
    MineStage,
    PairsStage,
    PipelineConfig,
    SynthStage,
    TrainStage,
)
from rtrain.train.job_paths import absolute_paths

log = logging.getLogger("rtrain.pipeline")

ORDER = ("synth", "pairs", "mine", "train", "eval", "export")


def train_job(cfg: PipelineConfig, stage: TrainStage) -> JobConfig:
    """The stage's job with its data and output set from the stage's inputs and output folder."""
    workdir = Path(cfg.workdir).resolve()
    job = resolve_job(
        stage.job_mapping(cfg.name, workdir),
        {"output.storage_path": str(workdir), "output.name": stage.output, "output.export": False},
        where="stages.train.job",
    )
    return absolute_paths(job, Path.cwd())  # Ray Train workers run in another folder


def _run_synth(cfg: PipelineConfig, stage: SynthStage, output: Path) -> dict[str, Any]:
    from rtrain.synth import generate

    return {"manifest": generate(stage.config, output)}


def _run_pairs(cfg: PipelineConfig, stage: PairsStage, output: Path) -> dict[str, Any]:
    from rtrain.pairs import build_pairs

    return {"manifest": build_pairs(stage.resolved(), output, log=log.info).manifest}


def _run_mine(cfg: PipelineConfig, stage: MineStage, output: Path) -> dict[str, Any]:
    from rtrain.mining import mine

    workdir = Path(cfg.workdir).resolve()
    config = stage.config.model_copy(update={"corpus": [str(workdir / c) for c in stage.config.corpus]})
    return {"manifest": mine([str(workdir / i) for i in stage.inputs], config, output)}


def _run_train(cfg: PipelineConfig, stage: TrainStage, output: Path) -> dict[str, Any]:
    from rtrain.train.trainer import train

    outcome = train(train_job(cfg, stage))
    return {"metrics": outcome.metrics, "checkpoint": str(outcome.checkpoint)}


def _run_eval(cfg: PipelineConfig, stage: EvalStage, output: Path) -> dict[str, Any]:
    workdir = Path(cfg.workdir).resolve()
    *heldout, run_dir = (workdir / i for i in stage.inputs)
    base_job = train_job(cfg, cfg.stages.train) if cfg.stages.train else None
    return run_eval(stage, heldout[0] if heldout else None, run_dir, output, base_job)


def _run_export(cfg: PipelineConfig, stage: ExportStage, output: Path) -> dict[str, Any]:
    from rtrain.export import export_model

    return {"model": str(export_model(Path(cfg.workdir).resolve() / stage.inputs[0], output))}


RUNNERS: dict[str, Callable[[PipelineConfig, Any, Path], dict[str, Any]]] = {
    "synth": _run_synth,
    "pairs": _run_pairs,
    "mine": _run_mine,
    "train": _run_train,
    "eval": _run_eval,
    "export": _run_export,
}


def stage_inputs(stage: BaseModel, workdir: Path) -> list[Path]:
    corpus = stage.config.corpus if isinstance(stage, MineStage) else []  # mining's extra candidate files
    return [workdir / i for i in [*(getattr(stage, "inputs", None) or []), *corpus]]


def _error_line(err: BaseException) -> str:
    """One line for an error: its type, its message's first line and, for a longer message, its last line
    (e.g. a Ray Train failure: the worker's own error, after its traceback)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    message = lines[0] if lines else ""
    if len(lines) > 1:
        message += f" ... {lines[-1]}"
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def run_pipeline(cfg: PipelineConfig, force: bool = False, until: str | None = None) -> dict[str, Any]:
    """Run (or skip) each configured stage in order, up to and including `until` (default: all);
    returns each stage's result or 'skipped'."""
    configured = [name for name in ORDER if getattr(cfg.stages, name) is not None]
    if until is not None and until not in configured:
        raise ConfigError(
            f"--until {until!r}: not a stage of pipeline {cfg.name!r}; its stages: {', '.join(configured)}"
        )
    if cfg.stages.train is not None:
        train_job(cfg, cfg.stages.train)  # a bad job fails now, not after the stages before it
    workdir = Path(cfg.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    producers: dict[str, str] = {}  # output folder name -> fingerprint of the stage that wrote it
    results: dict[str, Any] = {}
    for name in ORDER:
        stage = getattr(cfg.stages, name)
        if stage is None:
            continue
        output = workdir / stage.output
        print_ = cache.fingerprint(
            {"stage": name, **stage.model_dump(mode="json")}, stage_inputs(stage, workdir), workdir, producers
        )
        if not force and cache.is_done(workdir, name, cfg.name, print_, output):
            log.info(f"[{name}] up to date, skipped ({output})")
            results[name] = "skipped"
        else:
            log.info(f"[{name}] running -> {output}")
            cache.start(workdir, name, cfg.name, output)
            started = time.perf_counter()
            try:
                results[name] = RUNNERS[name](cfg, stage, output)
            except Exception as err:
                log.error(f"[{name}] failed after {time.perf_counter() - started:.0f} s: {_error_line(err)}")
                raise
            cache.finish(workdir, name, cfg.name, print_)
            log.info(f"[{name}] done in {time.perf_counter() - started:.0f} s")
        producers[stage.output] = print_
        if name == until:
            break
    return results
