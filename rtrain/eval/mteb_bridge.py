"""Run rtrain encoders through ``mteb.evaluate`` and build mteb tasks from local files (no hub needed).

* :class:`MtebEncoder` wraps any :class:`rtrain.eval.TextEncoder` as an mteb 2.x encoder
  (``encode(inputs: DataLoader, *, task_metadata, hf_split, hf_subset, prompt_type, **kw)``,
  cosine ``similarity`` / ``similarity_pairwise`` via ``mteb_model_meta``). ``prompt_type``
  query / document maps to ``kind``; tasks without one (STS, bitext) use ``default_kind``.
* :func:`local_retrieval_task`, :func:`local_bitext_task`, :func:`local_sts_task` make task
  instances whose ``load_data`` serves in-memory data, so ``mteb.evaluate(MtebEncoder(enc),
  [task], cache=None)`` runs offline; :func:`mlqa_retrieval_task`, :func:`pairs_retrieval_task`
  and :func:`flores_bitext_task` fill them from rtrain's readers.

Importing this module imports mteb (several seconds); ``rtrain.eval`` itself never does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType

from rtrain.eval.languages import subset_languages
from rtrain.eval.protocol import EncodeKind, TextEncoder, encode_checked
from rtrain.eval.readers_mlqa_sts import RetrievalData
from rtrain.eval.results import content_revision

MTEB_K_VALUES = (1, 3, 5, 10, 20, 100, 1000)  # AbsTaskRetrieval's default cut-offs


class MtebEncoder(AbsEncoder):
    """An rtrain :class:`TextEncoder` as an mteb encoder (results go under ``name`` / ``revision``)."""

    def __init__(
        self,
        encoder: TextEncoder,
        name: str = "rtrain/model",
        revision: str = "local",
        default_kind: EncodeKind = "query",
    ) -> None:
        if not hasattr(encoder, "encode"):
            raise TypeError(f"{type(encoder).__name__} has no encode(texts, kind, ...); pass an rtrain TextEncoder")
        self.model = encoder
        self.default_kind: EncodeKind = default_kind
        full_name = name if "/" in name else f"rtrain/{name}"  # mteb wants organisation/model
        self.mteb_model_meta = ModelMeta.create_empty(
            overwrites={
                "name": full_name,
                "revision": revision,
                "similarity_fn_name": ScoringFunction.COSINE,
            }
        )

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        kind: EncodeKind = (
            "query"
            if prompt_type == PromptType.query
            else "document"
            if prompt_type == PromptType.document
            else self.default_kind
        )
        return encode_checked(
            self.model,
            texts,
            kind,
            batch_size=int(kwargs.get("batch_size", 64)),
            show_progress=bool(kwargs.get("show_progress_bar", False)),
            what=f"{task_metadata.name}/{hf_subset} texts",
        )  # (n, dim)


def _class_name(name: str) -> str:
    return re.sub(r"\W", "_", name) or "LocalTask"


def _metadata(
    name: str, task_type: str, main_score: str, split: str, langs: dict[str, list[str]], revision: str, description: str
) -> TaskMetadata:
    return TaskMetadata(
        name=name,
        description=description,
        type=task_type,
        main_score=main_score,
        eval_splits=[split],
        eval_langs=langs,
        dataset={"path": f"local/{name}", "revision": revision},
        category="t2t",
        modalities=["text"],
        domains=[],
        task_subtypes=[],
        license="not specified",
        annotations_creators="derived",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
    )


def _languages(subsets: Sequence[str], languages: Mapping[str, list[str]] | None) -> dict[str, list[str]]:
    return {s: list((languages or {}).get(s) or subset_languages(s)) for s in subsets}


def local_retrieval_task(
    name: str,
    subsets: Mapping[str, RetrievalData],
    *,
    split: str = "test",
    k_values: Sequence[int] = MTEB_K_VALUES,
    languages: Mapping[str, list[str]] | None = None,
) -> AbsTaskRetrieval:
    """An mteb retrieval task over in-memory ``{subset: RetrievalData}`` (corpus without titles)."""
    if not subsets:
        raise ValueError(f"retrieval task {name!r}: no subsets given")
    revision = content_revision(t for d in subsets.values() for t in (*d.queries.values(), *d.corpus.values()))
    meta = _metadata(
        name,
        "Retrieval",
        "ndcg_at_10",
        split,
        _languages(list(subsets), languages),
        revision,
        f"rtrain local retrieval task {name} ({len(subsets)} subsets).",
    )

    def load_data(self: AbsTaskRetrieval, num_proc: int | None = None, **kwargs: Any) -> None:
        self.dataset = {
            subset: {
                split: {
                    "corpus": Dataset.from_dict(
                        {"id": list(d.corpus), "text": list(d.corpus.values()), "title": [""] * len(d.corpus)}
                    ),
                    "queries": Dataset.from_dict({"id": list(d.queries), "text": list(d.queries.values())}),
                    "relevant_docs": {q: dict(docs) for q, docs in d.qrels.items()},
                    "top_ranked": None,
                }
            }
            for subset, d in subsets.items()
        }
        self.data_loaded = True

    cls = type(
        _class_name(name), (AbsTaskRetrieval,), {"metadata": meta, "k_values": tuple(k_values), "load_data": load_data}
    )
    return cls()


def local_bitext_task(
    name: str,
    pairs: Mapping[str, tuple[Sequence[str], Sequence[str]]],
    *,
    split: str = "test",
    languages: Mapping[str, list[str]] | None = None,
) -> AbsTaskBitextMining:
    """An mteb bitext-mining task: subset ``"src-tgt"`` mines each source among the targets (main score f1)."""
    if not pairs:
        raise ValueError(f"bitext task {name!r}: no pairs given")
    for pair, (src, tgt) in pairs.items():
        if len(src) != len(tgt):
            raise ValueError(f"bitext task {name!r}: pair {pair!r} has {len(src)} vs {len(tgt)} sentences")
    revision = content_revision(t for s, g in pairs.values() for t in (*s, *g))
    meta = _metadata(
        name,
        "BitextMining",
        "f1",
        split,
        _languages(list(pairs), languages),
        revision,
        f"rtrain local bitext task {name} ({len(pairs)} pairs).",
    )

    def load_data(self: AbsTaskBitextMining, num_proc: int | None = None, **kwargs: Any) -> None:
        self.dataset = {
            pair: {split: Dataset.from_dict({"sentence1": list(s), "sentence2": list(g)})}
            for pair, (s, g) in pairs.items()
        }
        self.data_loaded = True

    return type(_class_name(name), (AbsTaskBitextMining,), {"metadata": meta, "load_data": load_data})()


def local_sts_task(
    name: str,
    pairs: Mapping[str, Any],
    *,
    split: str = "test",
    languages: Mapping[str, list[str]] | None = None,
) -> AbsTaskSTS:
    """An mteb STS task over ``{subset: (sentences1, sentences2, scores 0-5)}`` (main score cosine_spearman)."""
    data = {subset: tuple(list(part) for part in value) for subset, value in pairs.items()}
    if not data:
        raise ValueError(f"STS task {name!r}: no subsets given")
    revision = content_revision(t for s1, s2, _ in data.values() for t in (*s1, *s2))
    meta = _metadata(
        name,
        "STS",
        "cosine_spearman",
        split,
        _languages(list(data), languages),
        revision,
        f"rtrain local STS task {name} ({len(data)} subsets).",
    )

    def load_data(self: AbsTaskSTS, num_proc: int | None = None, **kwargs: Any) -> None:
        self.dataset = {
            subset: {split: Dataset.from_dict({"sentence1": s1, "sentence2": s2, "score": sc})}
            for subset, (s1, s2, sc) in data.items()
        }
        self.data_loaded = True

    return type(
        _class_name(name), (AbsTaskSTS,), {"metadata": meta, "min_score": 0, "max_score": 5, "load_data": load_data}
    )()


# ------------------------------------------------------------------------------------------------
# from rtrain's readers
# ------------------------------------------------------------------------------------------------


def mlqa_retrieval_task(
    languages: Sequence[str],
    *,
    mode: str = "mono",
    target: str = "en",
    limit: int | None = None,
    corpus_limit: int | None = None,
    root: str | Path | None = None,
    name: str = "LocalMLQARetrieval",
    k_values: Sequence[int] = MTEB_K_VALUES,
) -> AbsTaskRetrieval:
    """MLQA-R as an mteb task: subsets ``lang`` (mono) and / or ``lang-target`` (cross); split ``dev``."""
    from rtrain.eval.readers import read_mlqa, read_mlqa_cross

    if mode not in ("mono", "cross", "both"):
        raise ValueError(f"mode={mode!r}; choose mono, cross or both")
    subsets: dict[str, RetrievalData] = {}
    for lang in languages:
        if mode in ("mono", "both"):
            subsets[lang] = read_mlqa(lang, root=root, limit=limit, corpus_limit=corpus_limit)
        if mode in ("cross", "both") and lang != target:
            subsets[f"{lang}-{target}"] = read_mlqa_cross(
                lang, target=target, root=root, limit=limit, corpus_limit=corpus_limit
            )
    return local_retrieval_task(name, subsets, split="dev", k_values=k_values)


def pairs_retrieval_task(
    rows_or_path: Any, *, name: str = "LocalPairsRetrieval", k_values: Sequence[int] = MTEB_K_VALUES
) -> AbsTaskRetrieval:
    """A pair-schema file (or rows) as one ``default`` subset, built exactly like ``RetrievalEvaluator.from_pairs``."""
    from rtrain.eval.retrieval import RetrievalEvaluator

    ev = RetrievalEvaluator.from_pairs(rows_or_path, name=name, k_values=(1, 10))
    data = RetrievalData(ev.corpus, {q: ev.queries[q] for q in ev.query_ids}, {q: ev.qrels[q] for q in ev.query_ids})
    langs = sorted(set(ev.languages.values())) if ev.languages else []
    return local_retrieval_task(
        name,
        {"default": data},
        k_values=k_values,
        languages={"default": [lang for code in langs for lang in subset_languages(code)]},
    )


def flores_bitext_task(
    codes: Sequence[str],
    *,
    root: str | Path | None = None,
    split: str = "dev",
    target: str = "eng_Latn",
    limit: int | None = None,
    both_directions: bool = False,
    name: str = "LocalFloresBitextMining",
) -> AbsTaskBitextMining:
    """FLORES pairs as an mteb task: subsets ``X-eng_Latn`` (and ``eng_Latn-X`` with ``both_directions``)."""
    from rtrain.eval.readers import read_flores

    pairs: dict[str, tuple[Sequence[str], Sequence[str]]] = {}
    for pair, (src, tgt) in read_flores(codes, root=root, split=split, target=target, limit=limit).items():
        pairs[pair] = (src, tgt)
        if both_directions:
            a, b = pair.split("-")
            pairs[f"{b}-{a}"] = (tgt, src)
    return local_bitext_task(name, pairs, split=split)
