"""The eval task kinds of a suite, one pydantic model each: its keys, its defaults, its evaluator, how it loads.

To add a kind: a :class:`~rtrain.eval.task_base.TaskBase` subclass here (or in its own module) with
``kind: Literal["..."]``, its keys, ``display_name`` / ``default_split`` / ``evaluator`` and ``build``;
then one line in :data:`rtrain.eval.suite_schema.TASK_KINDS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from rtrain.eval.bitext import BitextMiningEvaluator, direction_names
from rtrain.eval.protocol import TextEncoder
from rtrain.eval.readers import (
    FLORES_DIR,
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
from rtrain.eval.results import content_revision
from rtrain.eval.retrieval import RetrievalEvaluator
from rtrain.eval.sts import STSEvaluator
from rtrain.eval.task_base import BuiltTask, StrictModel, Subsets, SuiteSettings, TaskBase

# ------------------------------------------------------------------------------------------------
# retrieval: pairs files, MLQA-R, BEIR folders
# ------------------------------------------------------------------------------------------------


def _retrieval_kwargs(task: TaskBase, suite: SuiteSettings) -> dict[str, Any]:
    return {"k_values": tuple(suite.k_values), "batch_size": task.batch(suite)}


def _single_retrieval(task: TaskBase, ev: RetrievalEvaluator) -> BuiltTask:
    """One evaluator; subsets are its query languages, else one ``default`` subset."""
    langs = sorted(set(ev.languages.values())) if ev.languages else []
    subsets = langs or ["default"]

    def run(encoder: TextEncoder) -> Subsets:
        out = ev(encoder)
        return out["per_language"] or {"default": out["overall"]}

    stats = {
        "all": {
            "queries": len(ev.query_ids),
            "documents": len(ev.corpus),
            "queries_without_qrels": ev.n_skipped_queries,
        }
    }
    texts = [*ev.queries.values(), *ev.corpus.values()]
    return BuiltTask(task, ev.primary_metric, run, subsets, content_revision(texts), stats)


class RetrievalPairsTask(TaskBase):
    """Retrieval over a pairs file (.parquet/.jsonl): each query against every row's positive and negatives."""

    display_name: ClassVar[str] = "LocalPairsRetrieval"
    evaluator: ClassVar[type[RetrievalEvaluator]] = RetrievalEvaluator

    kind: Literal["retrieval_pairs"]
    path: str = Field(description="Pairs file (.parquet / .jsonl).")
    split: str | None = Field(None, description="Split label in results; default test.")

    def build(self, suite: SuiteSettings) -> BuiltTask:
        rows = read_pairs(self.path)[: self.limit]
        ev = RetrievalEvaluator.from_pairs(rows, name=self.task_name, **_retrieval_kwargs(self, suite))
        return _single_retrieval(self, ev)


class MLQATask(TaskBase):
    """MLQA-R retrieval: questions -> paragraphs, per language (mono) and/or against the target's corpus (cross)."""

    display_name: ClassVar[str] = "LocalMLQARetrieval"
    default_split: ClassVar[str] = "dev"
    evaluator: ClassVar[type[RetrievalEvaluator]] = RetrievalEvaluator

    kind: Literal["mlqa"]
    languages: list[str] | None = Field(None, min_length=1, description="Default: every language found.")
    mode: Literal["mono", "cross", "both"] = "mono"
    target: str | None = Field(None, description="cross: the corpus language; default en.")
    corpus_limit: int | None = Field(None, ge=1)
    root: str | None = Field(None, description="Data folder; default under the suite's data_root.")
    split: str | None = Field(None, description="Split label in results; default dev.")

    def build(self, suite: SuiteSettings) -> BuiltTask:
        root = self.data_folder(suite, MLQA_DIR)
        target = self.target or "en"
        langs = self.languages or mlqa_languages(root)
        evaluators: dict[str, RetrievalEvaluator] = {}
        stats: dict[str, Any] = {}
        texts: list[str] = []
        for lang in langs:
            jobs = []
            if self.mode in ("mono", "both"):
                jobs.append(
                    (
                        lang,
                        lambda lang=lang: read_mlqa(lang, root=root, limit=self.limit, corpus_limit=self.corpus_limit),
                    )
                )
            if self.mode in ("cross", "both") and lang != target:
                jobs.append(
                    (
                        f"{lang}-{target}",
                        lambda lang=lang: read_mlqa_cross(
                            lang, target=target, root=root, limit=self.limit, corpus_limit=self.corpus_limit
                        ),
                    )
                )
            for subset, read in jobs:
                data = read()
                evaluators[subset] = RetrievalEvaluator(
                    f"{self.task_name}/{subset}",
                    data.queries,
                    data.corpus,
                    data.qrels,
                    **_retrieval_kwargs(self, suite),
                )
                stats[subset] = {
                    "queries": len(data.queries),
                    "documents": len(data.corpus),
                    "skipped": sum(data.skipped.values()),
                }
                texts += [*data.queries.values(), *data.corpus.values()]
        if not evaluators:
            raise ValueError(
                f"task {self.task_name}: mode={self.mode} with languages {langs} leaves nothing to run "
                f"(cross-lingual needs languages other than the target {target!r})"
            )

        def run(encoder: TextEncoder) -> Subsets:
            return {subset: ev(encoder)["overall"] for subset, ev in evaluators.items()}

        return BuiltTask(self, self.primary_metric, run, list(evaluators), content_revision(texts), stats)


class BeirTask(TaskBase):
    """Retrieval over a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."""

    display_name: ClassVar[str] = "LocalBEIRRetrieval"
    evaluator: ClassVar[type[RetrievalEvaluator]] = RetrievalEvaluator

    kind: Literal["beir"]
    path: str = Field(description="BEIR folder.")
    split: str | None = Field(None, description="The qrels split to read; default test.")

    def build(self, suite: SuiteSettings) -> BuiltTask:
        data = read_beir(self.path, split=self.split_name)
        qids = [q for q in data.queries if q in data.qrels][: self.limit]
        ev = RetrievalEvaluator(
            self.task_name,
            {q: data.queries[q] for q in qids},
            data.corpus,
            {q: data.qrels[q] for q in qids},
            **_retrieval_kwargs(self, suite),
        )
        task = _single_retrieval(self, ev)
        task.stats["all"]["skipped"] = data.skipped
        return task


# ------------------------------------------------------------------------------------------------
# bitext mining: FLORES, any parallel files
# ------------------------------------------------------------------------------------------------


def _bitext_task(
    task: TaskBase, suite: SuiteSettings, pairs: dict[str, tuple[list[str], list[str]]], both_directions: bool
) -> BuiltTask:
    """Mine each pair forward (and backward with ``both_directions``); subsets are mteb's ``src-tgt`` names."""
    ev = BitextMiningEvaluator(task.task_name, pairs, both_directions=both_directions, batch_size=task.batch(suite))

    def subset(direction: str) -> str:
        # rtrain names directions "a->b"; mteb's subset for source a mined against targets b is "a-b"
        return direction.replace("->", "-").removesuffix(":forward")

    directions = [d for pair in ev.pairs for d in direction_names(pair)[: 2 if both_directions else 1]]
    subsets = [subset(d) for d in directions]

    def run(encoder: TextEncoder) -> Subsets:
        return {subset(d): m for d, m in ev(encoder)["per_direction"].items()}

    stats = {pair: {"sentences": len(s)} for pair, (s, _) in ev.pairs.items()}
    texts = [t for s, g in ev.pairs.values() for t in (*s, *g)]
    return BuiltTask(task, ev.primary_metric, run, subsets, content_revision(texts), stats)


class FloresBitextTask(TaskBase):
    """FLORES bitext mining: each language's sentences against the target's (eng_Latn)."""

    display_name: ClassVar[str] = "LocalFloresBitextMining"
    default_split: ClassVar[str] = "dev"
    evaluator: ClassVar[type[BitextMiningEvaluator]] = BitextMiningEvaluator

    kind: Literal["flores_bitext"]
    languages: list[str] | None = Field(None, min_length=1, description="FLORES codes; default every one found.")
    target: str | None = Field(None, description="The language mined against; default eng_Latn.")
    split: str | None = Field(None, description="train | dev | test; default dev.")
    both_directions: bool = False
    root: str | None = Field(None, description=f"FLORES folder; default {FLORES_DIR} under the suite's data_root.")

    def build(self, suite: SuiteSettings) -> BuiltTask:
        root = (
            Path(self.root)
            if self.root
            else (Path(suite.data_root) / FLORES_DIR if suite.data_root else default_flores_root())
        )
        target = self.target or "eng_Latn"
        codes = self.languages or [c for c in flores_codes(root) if c != target]
        pairs = read_flores(codes, root=root, split=self.split_name, target=target, limit=self.limit)
        return _bitext_task(self, suite, pairs, self.both_directions)


class ParallelPair(StrictModel):
    """Two line-aligned files (``src`` + ``tgt``) or one two-column TSV (``tsv``) for a ``src-tgt`` pair."""

    name: str = Field(description="Pair name, e.g. 'de-en' (source first).")
    src: str | None = None
    tgt: str | None = None
    tsv: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ParallelPair:
        if (self.tsv is None) == (self.src is None or self.tgt is None) or (self.tsv and (self.src or self.tgt)):
            raise ValueError(f"pair {self.name!r}: give either src and tgt (two line-aligned files) or tsv, not both")
        return self


class ParallelTask(TaskBase):
    """Bitext mining over any parallel files, one subset per listed pair."""

    display_name: ClassVar[str] = "LocalParallelBitextMining"
    evaluator: ClassVar[type[BitextMiningEvaluator]] = BitextMiningEvaluator

    kind: Literal["parallel"]
    pairs: list[ParallelPair] = Field(min_length=1)
    both_directions: bool = False
    split: str | None = Field(None, description="Split label in results; default test.")

    def paths(self) -> list[tuple[str, str | None]]:
        return [
            (f"pairs.{j}.{key}", getattr(pair, key))
            for j, pair in enumerate(self.pairs)
            for key in ("src", "tgt", "tsv")
        ]

    def build(self, suite: SuiteSettings) -> BuiltTask:
        pairs: dict[str, tuple[list[str], list[str]]] = {}
        for pair in self.pairs:
            src, tgt = read_parallel_tsv(pair.tsv) if pair.tsv else read_parallel_files(pair.src or "", pair.tgt or "")
            pairs[pair.name] = (src[: self.limit], tgt[: self.limit])
        return _bitext_task(self, suite, pairs, self.both_directions)


# ------------------------------------------------------------------------------------------------
# STS: STS-B multi-MT, STS17
# ------------------------------------------------------------------------------------------------


def _sts_task(task: TaskBase, suite: SuiteSettings, pairs: dict[str, Any]) -> BuiltTask:
    """One STS evaluator over ``{track: STSPairs}``; subsets are the tracks."""
    ev = STSEvaluator(task.task_name, pairs, batch_size=task.batch(suite))

    def run(encoder: TextEncoder) -> Subsets:
        return ev(encoder)["per_language"]

    stats = {t: {"pairs": len(p), "skipped": p.skipped} for t, p in pairs.items()}
    texts = [t for s1, s2, _ in ev.pairs.values() for t in (*s1, *s2)]
    return BuiltTask(task, ev.primary_metric, run, list(ev.pairs), content_revision(texts), stats)


class STSBTask(TaskBase):
    """STS-B multi-MT: scored sentence pairs per language."""

    display_name: ClassVar[str] = "LocalSTSBMultiMT"
    evaluator: ClassVar[type[STSEvaluator]] = STSEvaluator

    kind: Literal["sts_b"]
    languages: list[str] | None = Field(None, min_length=1, description="Default: every language of the split.")
    split: str | None = Field(None, description="dev | test; default test.")
    root: str | None = Field(None, description="Data folder; default under the suite's data_root.")

    def build(self, suite: SuiteSettings) -> BuiltTask:
        root = self.data_folder(suite, STSB_DIR)
        langs = self.languages or stsb_languages(root, self.split_name)
        return _sts_task(
            self, suite, {lang: read_stsb(lang, self.split_name, root=root, limit=self.limit) for lang in langs}
        )


class STS17Task(TaskBase):
    """STS17 (SemEval 2017) cross- and monolingual tracks; the test split only."""

    display_name: ClassVar[str] = "LocalSTS17"
    evaluator: ClassVar[type[STSEvaluator]] = STSEvaluator

    kind: Literal["sts17"]
    languages: list[str] | None = Field(None, min_length=1, description=f"Tracks; default {', '.join(STS17_TRACKS)}.")
    root: str | None = Field(None, description="Data folder; default under the suite's data_root.")

    def build(self, suite: SuiteSettings) -> BuiltTask:
        root = self.data_folder(suite, STS17_DIR)
        tracks = self.languages or list(STS17_TRACKS)
        return _sts_task(self, suite, {t: read_sts17(t, root=root, limit=self.limit) for t in tracks})
