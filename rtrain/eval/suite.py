"""Run an eval suite (see :mod:`rtrain.eval.suite_schema`) over several models; write mteb-layout results.

``run_suite(suite, {"base": enc1, "tuned": enc2}, out_dir)`` reads every task's data first (so a
missing file fails before any model runs), then for each model and task writes
``<out>/<model>/<TaskName>.json`` (mteb's TaskResult layout, one score entry per language subset),
and at the end ``<out>/summary.md`` (one table per task), ``<out>/suite.json`` (the resolved suite
and each task's data sizes and skipped-row warnings) and, with two or more models,
``<out>/<TaskName>.png`` (per-language bars).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rtrain.config.load import resolve
from rtrain.eval.encoders import CachedEncoder, with_prefixes
from rtrain.eval.languages import subset_languages
from rtrain.eval.protocol import TextEncoder
from rtrain.eval.report import bar_chart, format_table
from rtrain.eval.results import mean_over_subsets, task_result, write_task_result
from rtrain.eval.suite_schema import SuiteConfig
from rtrain.eval.task_base import BuiltTask

logger = logging.getLogger(__name__)


def load_suite(source: str | Path | Mapping[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> SuiteConfig:
    """A validated suite from YAML (or a mapping) plus ``a.b=c`` overrides; ConfigError names every bad key.

    Overrides may index the task list (``tasks.0.limit=5``); validation goes through ``config.load.resolve``.
    """
    return resolve(SuiteConfig, source, list(overrides), where=None if isinstance(source, (str, Path)) else "suite")


# ------------------------------------------------------------------------------------------------
# building tasks
# ------------------------------------------------------------------------------------------------


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def build_tasks(suite: SuiteConfig) -> list[BuiltTask]:
    """Read every task's data; each task's skipped-row warnings are kept in ``stats["warnings"]``."""
    built = []
    readers_log = logging.getLogger("rtrain.eval.readers")
    for spec in suite.tasks:
        collector = _WarningCollector()
        readers_log.addHandler(collector)
        try:
            task = spec.build(suite)
        finally:
            readers_log.removeHandler(collector)
        task.stats["warnings"] = collector.messages
        logger.info("suite %s: task %s ready: %s", suite.name, task.name, ", ".join(task.subsets))
        built.append(task)
    return built


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------


def _summary(suite: SuiteConfig, built: list[BuiltTask], results: dict[str, dict[str, Any]]) -> str:
    lines = [f"# Eval suite: {suite.name}", "", f"models: {', '.join(next(iter(results.values())))}", ""]
    for task in built:
        lines += [
            f"## {task.name} ({task.main_metric}, split {task.spec.split_name})",
            "",
            format_table(results[task.name], metric="main_score"),
            "",
        ]
        sizes = "; ".join(
            f"{s}: {', '.join(f'{k} {v}' for k, v in d.items())}" for s, d in task.stats.items() if s != "warnings"
        )
        lines += [f"data: {sizes}", ""]
        lines += [f"- skipped: {w}" for w in task.stats["warnings"]] + ([""] if task.stats["warnings"] else [])
    return "\n".join(lines)


def run_suite(
    suite: SuiteConfig,
    models: Mapping[str, TextEncoder],
    out_dir: str | Path,
    *,
    built: list[BuiltTask] | None = None,
) -> dict[str, Any]:
    """Evaluate every model on every task of ``suite``; write results under ``out_dir``.

    Returns ``{"results": {task: {model: {"overall": {...}, "per_language": {subset: {...}}}}},
    "summary": markdown, "files": [written paths], "out_dir": str}``; ``overall`` is the unweighted
    mean over subsets (mteb's task score). Pass ``built`` to reuse tasks from :func:`build_tasks`.
    """
    if not models:
        raise ValueError("run_suite needs at least one model: {name: encoder}")
    out = Path(out_dir)
    tasks = built if built is not None else build_tasks(suite)
    results: dict[str, dict[str, Any]] = {t.name: {} for t in tasks}
    files: list[Path] = []
    for model_name, model in models.items():
        variants: dict[tuple[str | None, str | None], CachedEncoder] = {}
        for task in tasks:
            key = (
                task.spec.query_prefix if task.spec.query_prefix is not None else suite.query_prefix,
                task.spec.passage_prefix if task.spec.passage_prefix is not None else suite.passage_prefix,
            )
            if key not in variants:
                variants[key] = CachedEncoder(with_prefixes(model, *key))
            logger.info("suite %s: %s on %s", suite.name, model_name, task.name)
            start = time.perf_counter()
            subsets = task.run(variants[key])
            elapsed = time.perf_counter() - start
            result = task_result(
                task.name,
                task.spec.split_name,
                subsets,
                {s: subset_languages(s) for s in subsets},
                evaluation_time=elapsed,
                dataset_revision=task.revision,
            )
            files.append(write_task_result(out, model_name, result))
            results[task.name][model_name] = {"overall": mean_over_subsets(subsets), "per_language": subsets}
    summary = _summary(suite, tasks, results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(summary + "\n", encoding="utf-8")
    files.append(out / "summary.md")
    if len(models) > 1:
        for task in tasks:
            files.append(
                bar_chart(
                    results[task.name], "main_score", out / f"{task.name}.png", title=f"{task.name}: {task.main_metric}"
                )
            )
    meta = {
        "suite": suite.model_dump(mode="json"),
        "models": list(models),
        "tasks": {
            t.name: {
                "main_metric": t.main_metric,
                "greater_is_better": t.spec.greater_is_better,
                "subsets": t.subsets,
                "dataset_revision": t.revision,
                "data": t.stats,
            }
            for t in tasks
        },
    }
    (out / "suite.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    files.append(out / "suite.json")
    return {"results": results, "summary": summary, "files": [str(f) for f in files], "out_dir": str(out)}
