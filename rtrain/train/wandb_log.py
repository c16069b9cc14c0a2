"""Weights & Biases logging from rank 0; offline when no API key is set."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from rtrain.config.schema import JobConfig

log = logging.getLogger("rtrain.train")


class WandbLogger:
    """A W&B run on the worker that owns it (rank 0); a no-op elsewhere or when disabled."""

    def __init__(self, cfg: JobConfig, run_dir: str, enabled: bool) -> None:
        self.run = None
        if not enabled:
            return
        import wandb

        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        directory = Path(run_dir) / "wandb_files"
        directory.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=cfg.logging.project,
            group=cfg.logging.group,
            tags=cfg.logging.tags,
            name=Path(run_dir).name,
            config=cfg.model_dump(mode="json"),  # the job config only: never the environment
            dir=str(directory),
            mode=mode,
            reinit="finish_previous",
        )
        where = self.run.dir if mode == "offline" else self.run.url
        log.info(f"W&B run ({mode}): {where}" + ("  (sync later with `wandb sync`)" if mode == "offline" else ""))

    def config(self, values: dict[str, Any]) -> None:
        """Add to the run's config (e.g. the realised data mix)."""
        if self.run is not None:
            self.run.config.update(values, allow_val_change=True)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if self.run is not None:
            self.run.log(metrics, step=step)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
