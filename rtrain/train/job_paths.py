"""A job's relative paths made absolute, for processes that run it from another folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rtrain.config.load import resolve_job
from rtrain.config.schema import JobConfig


def absolute_paths(cfg: JobConfig, cwd: Path) -> JobConfig:
    """Relative data, eval-suite (and its tasks') and model paths made absolute against `cwd`.

    Tune runs each trial in its own folder and Ray Train moves workers to theirs, so a path that is
    relative where `rtrain tune` or `rtrain run` was started would point elsewhere inside a worker.
    """

    def fix(path: str) -> str:
        p = Path(path).expanduser()
        return path if p.is_absolute() else str((cwd / p).resolve())

    updates: dict[str, Any] = {"data.train_files": [fix(p) for p in cfg.data.train_files]}
    for i, source in enumerate(cfg.data.sources):
        updates[f"data.sources.{i}.files"] = [fix(p) for p in source.files]
    if cfg.eval is not None:  # the suite file, and the relative paths inside it
        from rtrain.eval.suite import load_suite

        updates["eval.suite"] = fix(cfg.eval.suite)
        suite = load_suite(updates["eval.suite"], cfg.eval.overrides)
        updates["eval.overrides"] = [*cfg.eval.overrides, *suite.path_overrides(cwd)]
    model = cfg.model.name_or_path
    if not model.startswith("pkg://") and (cwd / model).exists():
        updates["model.name_or_path"] = fix(model)
    return resolve_job(cfg.model_dump(mode="json"), updates, where="job with absolute paths")
