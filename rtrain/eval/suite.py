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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtrain.config.load import resolve
from rtrain.eval.bitext import BitextMiningEvaluator, _direction_names
from rtrain.eval.encoders import CachedEncoder, with_prefixes
from rtrain.eval.languages import subset_languages
from rtrain.eval.protocol import TextEncoder
from rtrain.eval.readers import (
    default_data_root,
    default_flores_root,
    flores_codes,
    mlqa_languages,
    read_beir,
    read_flores,
    read_mlqa,
    read_mlqa_cross,
    read_pairs,
    read_parallel_files,
    read_parallel_tsv,
    read_sts17,
    read_stsb,
    stsb_languages,
)
from rtrain.eval.readers_mlqa_sts import MLQA_DIR, STS17_DIR, STS17_TRACKS, STSB_DIR
from rtrain.eval.report import bar_chart, format_table
from rtrain.eval.results import content_revision, mean_over_subsets, task_result, write_task_result
from rtrain.eval.retrieval import RetrievalEvaluator
from rtrain.eval.sts import STSEvaluator
from rtrain.eval.suite_schema import SuiteConfig, TaskSpec

logger = logging.getLogger(__name__)

Subsets = dict[str, dict[str, float]]


@dataclass
class BuiltTask:
    """A task with its data loaded: ``run(encoder)`` returns ``{hf_subset: metrics with main_score}``."""

    spec: TaskSpec
    main_metric: str
    run: Callable[[TextEncoder], Subsets]
    subsets: list[str]
    revision: str
    stats: dict[str, Any] = field(default_factory=dict)  # subset -> sizes; "warnings" -> skipped-row reports

    @property
    def name(self) -> str:
        return self.spec.task_name


def load_suite(source: str | Path | Mapping[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> SuiteConfig:
    """A validated suite from YAML (or a mapping) plus ``a.b=c`` overrides; ConfigError names every bad key.

    Overrides may index the task list (``tasks.0.limit=5``); validation goes through ``config.load.resolve``.
    """
    return resolve(SuiteConfig, source, list(overrides), where=None if isinstance(source, (str, Path)) else "suite")


# ------------------------------------------------------------------------------------------------
# building tasks
# ------------------------------------------------------------------------------------------------


def _root(spec: TaskSpec, suite: SuiteConfig, folder: str) -> Path:
    if spec.root:
        return Path(spec.root)
    return Path(suite.data_root) / folder if suite.data_root else default_data_root() / folder


def _retrieval_kwargs(spec: TaskSpec, suite: SuiteConfig) -> dict[str, Any]:
    return {"k_values": tuple(suite.k_values), "batch_size": spec.batch_size or suite.batch_size}


def _build_mlqa(spec: TaskSpec, suite: SuiteConfig) -> BuiltTask:
    root = _root(spec, suite, MLQA_DIR)
    target = spec.target or "en"
    langs = spec.languages or mlqa_languages(root)
    evaluators: dict[str, RetrievalEvaluator] = {}
    stats: dict[str, Any] = {}
    texts: list[str] = []
    for lang in langs:
        jobs = []
        if spec.mode in ("mono", "both"):
            jobs.append((lang, lambda lang=lang: read_mlqa(lang, root=root, limit=spec.limit,
                                                           corpus_limit=spec.corpus_limit)))
        if spec.mode in ("cross", "both") and lang != target:
            jobs.append((f"{lang}-{target}", lambda lang=lang: read_mlqa_cross(
                lang, target=target, root=root, limit=spec.limit, corpus_limit=spec.corpus_limit)))
        for subset, read in jobs:
            data = read()
            evaluators[subset] = RetrievalEvaluator(f"{spec.task_name}/{subset}", data.queries, data.corpus,
                                                    data.qrels, **_retrieval_kwargs(spec, suite))
            stats[subset] = {"queries": len(data.queries), "documents": len(data.corpus), "skipped": sum(data.skipped.values())}
            texts += [*data.queries.values(), *data.corpus.values()]
    if not evaluators:
        raise ValueError(f"task {spec.task_name}: mode={spec.mode} with languages {langs} leaves nothing to run "
                         f"(cross-lingual needs languages other than the target {target!r})")

    def run(encoder: TextEncoder) -> Subsets:
        return {subset: ev(encoder)["overall"] for subset, ev in evaluators.items()}

    return BuiltTask(spec, RetrievalEvaluator.primary_metric, run, list(evaluators), content_revision(texts), stats)


def _single_retrieval(spec: TaskSpec, ev: RetrievalEvaluator) -> BuiltTask:
    langs = sorted(set(ev.languages.values())) if ev.languages else []
    subsets = langs or ["default"]

    def run(encoder: TextEncoder) -> Subsets:
        out = ev(encoder)
        return out["per_language"] or {"default": out["overall"]}

    stats = {"all": {"queries": len(ev.query_ids), "documents": len(ev.corpus),
                     "queries_without_qrels": ev.n_skipped_queries}}
    texts = [*ev.queries.values(), *ev.corpus.values()]
    return BuiltTask(spec, ev.primary_metric, run, subsets, content_revision(texts), stats)


def _build_pairs(spec: TaskSpec, suite: SuiteConfig) -> BuiltTask:
    rows = read_pairs(spec.path or "")[: spec.limit]
    ev = RetrievalEvaluator.from_pairs(rows, name=spec.task_name, **_retrieval_kwargs(spec, suite))
    return _single_retrieval(spec, ev)


def _build_beir(spec: TaskSpec, suite: SuiteConfig) -> BuiltTask:
    data = read_beir(spec.path or "", split=spec.split_name)
    qids = [q for q in data.queries if q in data.qrels][: spec.limit]
    ev = RetrievalEvaluator(spec.task_name, {q: data.queries[q] for q in qids}, data.corpus,
                            {q: data.qrels[q] for q in qids}, **_retrieval_kwargs(spec, suite))
    task = _single_retrieval(spec, ev)
    task.stats["all"]["skipped"] = data.skipped
    return task


def _bitext_task(spec: TaskSpec, suite: SuiteConfig, pairs: dict[str, tuple[list[str], list[str]]]) -> BuiltTask:
    ev = BitextMiningEvaluator(spec.task_name, pairs, both_directions=spec.both_directions,
                               batch_size=spec.batch_size or suite.batch_size)
    def subset(direction: str) -> str:
        # rtrain names directions "a->b"; mteb's subset for source a mined against targets b is "a-b"
        return direction.replace("->", "-").removesuffix(":forward")

    directions = [d for pair in ev.pairs for d in _direction_names(pair)[: 2 if spec.both_directions else 1]]
    subsets = [subset(d) for d in directions]

    def run(encoder: TextEncoder) -> Subsets:
        return {subset(d): m for d, m in ev(encoder)["per_direction"].items()}

    stats = {pair: {"sentences": len(s)} for pair, (s, _) in ev.pairs.items()}
    texts = [t for s, g in ev.pairs.values() for t in (*s, *g)]
    return BuiltTask(spec, ev.primary_metric, run, subsets, content_revision(texts), stats)


def _build_flores(spec: TaskSpec, suite: SuiteConfig) -> BuiltTask:
    root = Path(spec.root) if spec.root else (
        Path(suite.data_root) / "sib200_flores_subset" if suite.data_root else default_flores_root())
    target = spec.target or "eng_Latn"
    codes = spec.languages or [c for c in flores_codes(root) if c != target]
    pairs = read_flores(codes, root=root, split=spec.split_name, target=target, limit=spec.limit)
    return _bitext_task(spec, suite, pairs)


def _build_parallel(spec: TaskSpec, suite: SuiteConfig) -> BuiltTask:
    pairs: dict[str, tuple[list[str], list[str]]] = {}
    for pair in spec.pairs or []:
        src, tgt = read_parallel_tsv(pair.tsv) if pair.tsv else read_parallel_files(pair.src or "", pair.tgt or "")
        pairs[pair.name] = (src[: spec.limit], tgt[: spec.limit])
    return _bitext_task(spec, suite, pairs)


def _sts_task(spec: TaskSpec, suite: SuiteConfig, pairs: dict[str, Any]) -> BuiltTask:
    ev = STSEvaluator(spec.task_name, pairs, batch_size=spec.batch_size or suite.batch_size)

    def run(encoder: TextEncoder) -> Subsets:
        return ev(encoder)["per_language"]

    stats = {t: {"pairs": len(p), "skipped": p.skipped} for t, p in pairs.items()}
    texts = [t for s1, s2, _ in ev.pairs.values() for t in (*s1, *s2)]
    return BuiltTask(spec, ev.primary_metric, run, list(ev.pairs), content_revision(texts), stats)


def _build_stsb(spec: TaskSpec, suite: SuiteConfig) -> BuiltTask:
    root = _root(spec, suite, STSB_DIR)
    langs = spec.languages or stsb_languages(root, spec.split_name)
    return _sts_task(spec, suite, {lang: read_stsb(lang, spec.split_name, root=root, limit=spec.limit)
                                   for lang in langs})


def _build_sts17(spec: TaskSpec, suite: SuiteConfig) -> BuiltTask:
    root = _root(spec, suite, STS17_DIR)
    tracks = spec.languages or list(STS17_TRACKS)
    return _sts_task(spec, suite, {t: read_sts17(t, root=root, limit=spec.limit) for t in tracks})


BUILDERS: dict[str, Callable[[TaskSpec, SuiteConfig], BuiltTask]] = {
    "retrieval_pairs": _build_pairs, "mlqa": _build_mlqa, "beir": _build_beir, "flores_bitext": _build_flores,
    "sts_b": _build_stsb, "sts17": _build_sts17, "parallel": _build_parallel,
}


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
            task = BUILDERS[spec.kind](spec, suite)
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
        lines += [f"## {task.name} ({task.main_metric}, split {task.spec.split_name})", "",
                  format_table(results[task.name], metric="main_score"), ""]
        sizes = "; ".join(f"{s}: {', '.join(f'{k} {v}' for k, v in d.items())}"
                          for s, d in task.stats.items() if s != "warnings")
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
            key = (task.spec.query_prefix if task.spec.query_prefix is not None else suite.query_prefix,
                   task.spec.passage_prefix if task.spec.passage_prefix is not None else suite.passage_prefix)
            if key not in variants:
                variants[key] = CachedEncoder(with_prefixes(model, *key))
            logger.info("suite %s: %s on %s", suite.name, model_name, task.name)
            start = time.perf_counter()
            subsets = task.run(variants[key])
            elapsed = time.perf_counter() - start
            result = task_result(task.name, task.spec.split_name, subsets,
                                 {s: subset_languages(s) for s in subsets},
                                 evaluation_time=elapsed, dataset_revision=task.revision)
            files.append(write_task_result(out, model_name, result))
            results[task.name][model_name] = {"overall": mean_over_subsets(subsets), "per_language": subsets}
    summary = _summary(suite, tasks, results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(summary + "\n", encoding="utf-8")
    files.append(out / "summary.md")
    if len(models) > 1:
        for task in tasks:
            files.append(bar_chart(results[task.name], "main_score", out / f"{task.name}.png",
                                   title=f"{task.name}: {task.main_metric}"))
    meta = {"suite": suite.model_dump(mode="json"), "models": list(models),
            "tasks": {t.name: {"main_metric": t.main_metric, "subsets": t.subsets, "dataset_revision": t.revision,
                               "data": t.stats} for t in tasks}}
    (out / "suite.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    files.append(out / "suite.json")
    return {"results": results, "summary": summary, "files": [str(f) for f in files], "out_dir": str(out)}
