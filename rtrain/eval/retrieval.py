"""Dense retrieval evaluation: encode, search top-k with faiss, score like mteb.

Monolingual, cross-lingual (queries in one language, corpus in another) and mixed-language setups
are all the same thing here: give queries and a corpus in whatever languages, plus ``languages``
({qid: lang}) to get a per-language breakdown.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from rtrain.eval.metrics import mean_metrics, rank_documents, score_rankings
from rtrain.eval.protocol import TextEncoder, encode_checked

logger = logging.getLogger(__name__)

DEFAULT_IVF_THRESHOLD = 200_000


def _few(ids: Sequence[Any], n: int = 5) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:n])
    return f"[{shown}{', ...' if len(ids) > n else ''}]"


def build_index(
    doc_emb: np.ndarray,
    *,
    ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
    ivf_nlist: int | None = None,
    ivf_nprobe: int = 32,
    seed: int = 0,
) -> faiss.Index:
    """An inner-product faiss index over unit-norm ``doc_emb`` ``(n_docs, dim)``.

    Exact ``IndexFlatIP`` below ``ivf_threshold`` docs; above it an ``IndexIVFFlat`` with
    ``ivf_nlist`` lists (default ~4 sqrt(n), at least 39 training points per list), trained on a
    seeded sample of at most 256 points per list, searched with ``ivf_nprobe`` lists. IVF is
    approximate: raise ``ivf_nprobe`` (up to ``nlist`` = exact) if recall matters more than speed.
    """
    n_docs, dim = doc_emb.shape
    if n_docs < ivf_threshold:
        index = faiss.IndexFlatIP(dim)
        index.add(doc_emb)
        return index
    nlist = ivf_nlist if ivf_nlist is not None else max(1, min(int(4 * math.sqrt(n_docs)), n_docs // 39))
    if not 1 <= nlist <= n_docs:
        raise ValueError(f"ivf_nlist={nlist} must be between 1 and the corpus size {n_docs}")
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    n_train = min(n_docs, 256 * nlist)
    sample = np.sort(rng.choice(n_docs, size=n_train, replace=False))
    index.train(doc_emb[sample])  # (n_train, dim)
    index.add(doc_emb)
    index.nprobe = max(1, min(ivf_nprobe, nlist))
    return index


def search_index(
    index: faiss.Index,
    query_emb: np.ndarray,
    doc_ids: Sequence[str],
    k: int,
    *,
    query_batch_size: int = 512,
) -> list[dict[str, float]]:
    """Top-``k`` ``{doc_id: score}`` per query row, searching ``query_batch_size`` queries at a time.

    Memory is ``query_batch_size x k`` results per batch; faiss blocks the similarity computation
    internally, so no ``n_queries x n_docs`` matrix is ever built. IVF may return fewer than k hits
    (empty probed lists); those slots (id -1) are dropped.
    """
    runs: list[dict[str, float]] = []
    for start in range(0, query_emb.shape[0], query_batch_size):
        scores, idx = index.search(query_emb[start : start + query_batch_size], k)  # (b, k), (b, k)
        for row_scores, row_idx in zip(scores.tolist(), idx.tolist()):
            runs.append({doc_ids[i]: s for s, i in zip(row_scores, row_idx) if i >= 0})
    return runs


class RetrievalEvaluator:
    """Evaluate a :class:`TextEncoder` on one retrieval task.

    Args:
        name: task name used in logs and reports.
        queries: ``{qid: text}``; queries without qrels are not evaluated (logged).
        corpus: ``{doc_id: text}``.
        qrels: ``{qid: {doc_id: grade}}`` with integer grades (>= 1 relevant, 0 judged irrelevant).
        k_values: cut-offs; must include 10 (the primary metric is ``ndcg_at_10``).
        languages: optional ``{qid: lang}`` for a per-language breakdown; must cover every evaluated query.
        batch_size: encoder batch size.
        query_batch_size: queries per faiss search call.
        ivf_threshold: corpus size from which an IVF index is used instead of exact search.
        ivf_nlist / ivf_nprobe: IVF parameters (see :func:`build_index`).
        show_progress: passed to the encoder.

    Calling the evaluator returns ``{"overall": {metric: value}, "per_language": {lang: {...}}}``
    (``per_language`` is empty without ``languages``); every metric dict also has ``main_score``
    (= the primary metric), like mteb's results.
    """

    primary_metric: str = "ndcg_at_10"
    greater_is_better: bool = True

    def __init__(
        self,
        name: str,
        queries: Mapping[str, str],
        corpus: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        k_values: Sequence[int] = (1, 10, 100),
        languages: Mapping[str, str] | None = None,
        *,
        batch_size: int = 64,
        query_batch_size: int = 512,
        ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
        ivf_nlist: int | None = None,
        ivf_nprobe: int = 32,
        show_progress: bool = False,
    ) -> None:
        self.name = name
        self.k_values = self._check_k_values(k_values)
        if not corpus:
            raise ValueError(f"retrieval task '{name}': the corpus is empty; give at least one document")
        if not queries:
            raise ValueError(f"retrieval task '{name}': there are no queries; give at least one query")
        if not qrels:
            raise ValueError(
                f"retrieval task '{name}': qrels are empty; give {{qid: {{doc_id: grade}}}} for each query"
            )
        self.corpus = {str(k): v for k, v in corpus.items()}
        self.queries = {str(k): v for k, v in queries.items()}
        self.qrels = self._check_qrels(qrels)
        self.query_ids = [qid for qid in self.queries if qid in self.qrels]  # evaluated, in query order
        self.n_skipped_queries = len(self.queries) - len(self.query_ids)
        if self.n_skipped_queries:
            logger.info(
                "task %s: %d of %d queries have no qrels and are not evaluated",
                name,
                self.n_skipped_queries,
                len(self.queries),
            )
        no_relevant = [qid for qid in self.query_ids if not any(g >= 1 for g in self.qrels[qid].values())]
        if no_relevant:
            logger.warning(
                "task %s: %d queries have no relevant doc (they score 0), e.g. %s",
                name,
                len(no_relevant),
                _few(no_relevant),
            )
        self.languages = self._check_languages(languages)
        for what, texts in (("query", self.queries), ("document", self.corpus)):
            bad = [i for i, t in texts.items() if not isinstance(t, str)]
            if bad:
                raise TypeError(
                    f"retrieval task '{name}': {len(bad)} {what} text(s) are not strings, e.g. ids {_few(bad)}"
                )
        self.batch_size = batch_size
        self.query_batch_size = query_batch_size
        self.ivf_threshold = ivf_threshold
        self.ivf_nlist = ivf_nlist
        self.ivf_nprobe = ivf_nprobe
        self.show_progress = show_progress

    # ------------------------------------------------------------------ validation

    def _check_k_values(self, k_values: Sequence[int]) -> tuple[int, ...]:
        ks = tuple(sorted({int(k) for k in k_values}))
        if not ks or ks[0] < 1 or any(int(k) != k for k in k_values):
            raise ValueError(f"k_values={tuple(k_values)!r} must be positive integers, e.g. (1, 10, 100)")
        if 10 not in ks:
            raise ValueError(f"k_values={ks} must include 10: the primary metric is ndcg_at_10")
        return ks

    def _check_qrels(self, qrels: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
        clean: dict[str, dict[str, int]] = {}
        for qid, docs in qrels.items():
            clean[str(qid)] = {}
            for doc_id, grade in docs.items():
                try:
                    ok = not isinstance(grade, bool) and float(grade).is_integer()
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise ValueError(
                        f"qrels[{qid!r}][{doc_id!r}] = {grade!r}: grades must be integers (e.g. 1 = relevant)"
                    )
                clean[str(qid)][str(doc_id)] = int(grade)
        unknown_q = [qid for qid in clean if qid not in self.queries]
        if unknown_q:
            raise ValueError(
                f"retrieval task '{self.name}': qrels name {len(unknown_q)} query id(s) missing from "
                f"the queries, e.g. {_few(unknown_q)}; fix the qrels or add those queries"
            )
        unknown_d = sorted({d for docs in clean.values() for d in docs if d not in self.corpus})
        if unknown_d:
            raise ValueError(
                f"retrieval task '{self.name}': qrels name {len(unknown_d)} doc id(s) missing from "
                f"the corpus, e.g. {_few(unknown_d)}; fix the qrels or add those documents"
            )
        return clean

    def _check_languages(self, languages: Mapping[str, str] | None) -> dict[str, str] | None:
        if languages is None:
            return None
        langs = {str(k): str(v) for k, v in languages.items()}
        unknown = [qid for qid in langs if qid not in self.queries]
        if unknown:
            raise ValueError(
                f"retrieval task '{self.name}': languages name {len(unknown)} unknown query id(s), e.g. {_few(unknown)}"
            )
        missing = [qid for qid in self.query_ids if qid not in langs]
        if missing:
            raise ValueError(
                f"retrieval task '{self.name}': {len(missing)} evaluated queries have no language, "
                f"e.g. {_few(missing)}; give languages for all of them or pass languages=None"
            )
        return langs

    # ------------------------------------------------------------------ running

    def search(self, encoder: TextEncoder) -> dict[str, dict[str, float]]:
        """Encode corpus and queries and return the run ``{qid: {doc_id: cosine}}`` (top max(k_values))."""
        doc_ids = list(self.corpus)
        doc_emb = encode_checked(
            encoder,
            [self.corpus[d] for d in doc_ids],
            "document",
            batch_size=self.batch_size,
            show_progress=self.show_progress,
            what=f"'{self.name}' documents",
        )  # (n_docs, dim)
        query_emb = encode_checked(
            encoder,
            [self.queries[q] for q in self.query_ids],
            "query",
            batch_size=self.batch_size,
            show_progress=self.show_progress,
            what=f"'{self.name}' queries",
        )  # (n_queries, dim)
        if query_emb.shape[1] != doc_emb.shape[1]:
            raise ValueError(
                f"query embeddings have dim {query_emb.shape[1]} but document embeddings "
                f"{doc_emb.shape[1]}; the encoder must use one space for both kinds"
            )
        index = build_index(
            doc_emb, ivf_threshold=self.ivf_threshold, ivf_nlist=self.ivf_nlist, ivf_nprobe=self.ivf_nprobe
        )
        k = min(max(self.k_values), len(doc_ids))
        runs = search_index(index, query_emb, doc_ids, k, query_batch_size=self.query_batch_size)
        return dict(zip(self.query_ids, runs))

    def score(self, run: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
        """Metrics of a run ``{qid: {doc_id: score}}`` over this task's evaluated queries."""
        k_max = max(self.k_values)
        rankings = {qid: rank_documents(run.get(qid, {}), k_max) for qid in self.query_ids}
        per_query = score_rankings(rankings, {q: self.qrels[q] for q in self.query_ids}, self.k_values)
        overall = mean_metrics(per_query.values())
        overall["main_score"] = overall[self.primary_metric]
        per_language: dict[str, dict[str, float]] = {}
        if self.languages is not None:
            groups: dict[str, list[dict[str, float]]] = defaultdict(list)
            for qid in self.query_ids:
                groups[self.languages[qid]].append(per_query[qid])
            for lang in sorted(groups):
                per_language[lang] = mean_metrics(groups[lang])
                per_language[lang]["main_score"] = per_language[lang][self.primary_metric]
        return {"overall": overall, "per_language": per_language}

    def __call__(self, encoder: TextEncoder) -> dict[str, Any]:
        """Encode, search and score: ``{"overall": {...}, "per_language": {lang: {...}}}``."""
        results = self.score(self.search(encoder))
        logger.info(
            "task %s: %s = %.4f over %d queries",
            self.name,
            self.primary_metric,
            results["overall"][self.primary_metric],
            len(self.query_ids),
        )
        return results

    def __repr__(self) -> str:
        return (
            f"RetrievalEvaluator(name={self.name!r}, queries={len(self.query_ids)}, "
            f"corpus={len(self.corpus)}, k_values={self.k_values})"
        )

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_pairs(
        cls, rows_or_path: Sequence[Mapping[str, Any]] | str | Path, name: str | None = None, **kwargs: Any
    ) -> RetrievalEvaluator:
        """A task from pair-schema rows (or a ``.parquet`` / ``.jsonl`` pairs file).

        Queries are the distinct ``(query_lang, query)`` texts (a query repeated over rows gets all
        its rows' positives as relevant); the corpus is every distinct positive and negative text
        (negatives act as distractors); ``languages`` is each query's ``query_lang``. Row
        ``instruction`` fields are not applied: the encoder's ``kind="query"`` handles prompts.
        """
        from rtrain.eval.readers import check_pair_rows, read_pairs

        if isinstance(rows_or_path, (str, Path)):
            rows = read_pairs(rows_or_path)
            name = name or Path(rows_or_path).stem
        else:
            rows = check_pair_rows(list(rows_or_path), source="the given rows")
        name = name or "pairs"
        queries: dict[str, str] = {}
        languages: dict[str, str] = {}
        qid_of: dict[tuple[str, str], str] = {}
        corpus: dict[str, str] = {}
        did_of: dict[str, str] = {}
        qrels: dict[str, dict[str, int]] = defaultdict(dict)

        def doc_id(text: str) -> str:
            if text not in did_of:
                did_of[text] = f"d{len(did_of)}"
                corpus[did_of[text]] = text
            return did_of[text]

        for row in rows:
            key = (row["query_lang"], row["query"])
            if key not in qid_of:
                qid_of[key] = f"q{len(qid_of)}"
                queries[qid_of[key]] = row["query"]
                languages[qid_of[key]] = row["query_lang"]
            qrels[qid_of[key]][doc_id(row["positive"])] = 1
            for neg in row.get("negatives") or []:
                doc_id(neg)
        return cls(name, queries, corpus, dict(qrels), languages=languages, **kwargs)

    @classmethod
    def from_parallel(
        cls, pairs: Mapping[str, tuple[Sequence[str], Sequence[str]]], name: str = "parallel", **kwargs: Any
    ) -> RetrievalEvaluator:
        """Cross-lingual retrieval from parallel lists ``{"xxx-yyy": (sources, targets)}``.

        Each source sentence is a query whose one relevant doc is its aligned target; targets of all
        pairs are pooled (de-duplicated by text) into one corpus; languages are the source codes
        (the part before the first ``-``).
        """
        queries: dict[str, str] = {}
        languages: dict[str, str] = {}
        corpus: dict[str, str] = {}
        did_of: dict[str, str] = {}
        qrels: dict[str, dict[str, int]] = {}
        for pair, (src, tgt) in pairs.items():
            if len(src) != len(tgt):
                raise ValueError(
                    f"pair {pair!r}: {len(src)} source vs {len(tgt)} target sentences; "
                    "parallel lists must have equal length"
                )
            for i, (s, t) in enumerate(zip(src, tgt)):
                if t not in did_of:
                    did_of[t] = f"d{len(did_of)}"
                    corpus[did_of[t]] = t
                qid = f"{pair}:{i}"
                queries[qid] = s
                languages[qid] = str(pair).split("-")[0]
                qrels[qid] = {did_of[t]: 1}
        return cls(name, queries, corpus, qrels, languages=languages, **kwargs)

    @classmethod
    def from_beir(
        cls, folder: str | Path, split: str = "test", name: str | None = None, **kwargs: Any
    ) -> RetrievalEvaluator:
        """A task from a BEIR-style folder (see :func:`rtrain.eval.readers.read_beir`)."""
        from rtrain.eval.readers import read_beir

        data = read_beir(folder, split=split)
        return cls(name or Path(folder).name, data.queries, data.corpus, data.qrels, **kwargs)
