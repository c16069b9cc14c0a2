"""Retrieval and bitext-mining metrics, computed the way mteb 2.x (and pytrec_eval under it) does.

Retrieval (one query; ``ranked`` = doc ids best first, ``qrel`` = {doc_id: graded relevance}):

* ranking order: score descending, ties broken by doc id descending (trec_eval's order, which
  mteb's own MRR code copies; see :func:`rank_documents`);
* a doc is *relevant* when its grade is >= 1 (trec_eval's default ``relevance_level``); unjudged
  docs have grade 0; negative grades count as 0 gain;
* ``ndcg_at_k``  = DCG@k / IDCG@k with linear gain (the grade) and discount ``1 / log2(rank + 1)``;
  the ideal ranking is built from *all* judged grades in the qrels, not from what was retrieved;
* ``mrr_at_k``   = 1 / rank of the first relevant doc in the top k (0 if none);
* ``recall_at_k``= relevant docs in the top k / all relevant docs of the query;
* ``precision_at_k`` = relevant docs in the top k / k (k, even if fewer docs were retrieved);
* ``map_at_k``   = sum over relevant docs in the top k of precision at their rank, divided by the
  number of relevant docs of the query (trec_eval ``map_cut``);
* ``hit_rate_at_k`` = 1 if any relevant doc is in the top k (trec_eval ``success``).

A query with no relevant doc scores 0 everywhere (as in pytrec_eval). Averages are plain means over
queries. One deliberate difference: pytrec_eval silently skips a query that has qrels but is absent
from the run; :func:`score_rankings` scores it as an empty ranking (all zeros) instead.

Bitext mining (mteb ``AbsTaskBitextMining._compute_metrics``): every source sentence is matched to
its cosine nearest neighbour among the targets; with gold labels (the aligned index) mteb reports
sklearn's ``accuracy``, and ``precision`` / ``recall`` / ``f1`` with ``average="weighted"`` and
``zero_division=0``. :func:`bitext_metrics` re-implements exactly that (no sklearn needed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

RETRIEVAL_METRIC_PREFIXES = ("ndcg", "map", "recall", "precision", "mrr", "hit_rate")
BITEXT_METRICS = ("precision", "recall", "f1", "accuracy")


# ----------------------------------------------------------------------------------------------
# retrieval
# ----------------------------------------------------------------------------------------------


def rank_documents(doc_scores: Mapping[str, float], k: int | None = None) -> list[str]:
    """Doc ids best first: score descending, ties by doc id descending (trec_eval / mteb order)."""
    ranked = sorted(doc_scores.items(), key=lambda item: (item[1], item[0]), reverse=True)
    if k is not None:
        ranked = ranked[:k]
    return [doc_id for doc_id, _ in ranked]


def _relevant(qrel: Mapping[str, int]) -> set[str]:
    return {doc_id for doc_id, grade in qrel.items() if grade >= 1}


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"cut-off k={k!r} is invalid; use a positive integer such as 10")


def ndcg_at_k(ranked: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear graded gain and log2 discount; ideal DCG from the qrels."""
    _check_k(k)
    dcg = sum(max(qrel.get(doc_id, 0), 0) / math.log2(rank + 2) for rank, doc_id in enumerate(ranked[:k]))
    ideal = sorted((g for g in qrel.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def mrr_at_k(ranked: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant doc within the top k (0 if none)."""
    _check_k(k)
    relevant = _relevant(qrel)
    for rank, doc_id in enumerate(ranked[:k]):
        if doc_id in relevant:
            return 1.0 / (rank + 1)
    return 0.0


def recall_at_k(ranked: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    """Fraction of the query's relevant docs that appear in the top k."""
    _check_k(k)
    relevant = _relevant(qrel)
    if not relevant:
        return 0.0
    return sum(1 for doc_id in ranked[:k] if doc_id in relevant) / len(relevant)


def precision_at_k(ranked: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    """Relevant docs in the top k, divided by k."""
    _check_k(k)
    relevant = _relevant(qrel)
    return sum(1 for doc_id in ranked[:k] if doc_id in relevant) / k


def map_at_k(ranked: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    """Average precision cut at k, normalised by all relevant docs of the query (trec_eval map_cut)."""
    _check_k(k)
    relevant = _relevant(qrel)
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, doc_id in enumerate(ranked[:k]):
        if doc_id in relevant:
            hits += 1
            total += hits / (rank + 1)
    return total / len(relevant)


def hit_rate_at_k(ranked: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    """1.0 if any relevant doc is in the top k, else 0.0 (trec_eval ``success``)."""
    _check_k(k)
    relevant = _relevant(qrel)
    return float(any(doc_id in relevant for doc_id in ranked[:k]))


_METRIC_FUNCS = {
    "ndcg": ndcg_at_k,
    "map": map_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
    "hit_rate": hit_rate_at_k,
}


def query_metrics(ranked: Sequence[str], qrel: Mapping[str, int], k_values: Sequence[int]) -> dict[str, float]:
    """All retrieval metrics of one query, named like mteb (``ndcg_at_10``, ``recall_at_1``, ...)."""
    return {f"{prefix}_at_{k}": func(ranked, qrel, k) for prefix, func in _METRIC_FUNCS.items() for k in k_values}


def score_rankings(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    k_values: Sequence[int],
) -> dict[str, dict[str, float]]:
    """Per-query metrics for every query in ``qrels``.

    ``rankings[qid]`` is the doc ids best first (already tie-broken; see :func:`rank_documents`).
    Queries in ``rankings`` without qrels are ignored, as in pytrec_eval.
    """
    return {qid: query_metrics(list(rankings.get(qid, ())), qrel, k_values) for qid, qrel in qrels.items()}


def mean_metrics(per_query: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Plain mean of each metric over queries; empty input raises (there is nothing to average)."""
    rows = list(per_query)
    if not rows:
        raise ValueError("no queries to average metrics over; check that the qrels name evaluated queries")
    return {name: float(sum(row[name] for row in rows) / len(rows)) for name in rows[0]}


def retrieval_metrics(
    results: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    k_values: Sequence[int] = (1, 10, 100),
) -> dict[str, float]:
    """Mean metrics from a pytrec_eval-style run ``{qid: {doc_id: score}}``: the mteb entry point.

    Same inputs as mteb's ``calculate_retrieval_scores(results, qrels, k_values)``.
    """
    rankings = {qid: rank_documents(scores, max(k_values)) for qid, scores in results.items()}
    return mean_metrics(score_rankings(rankings, qrels, k_values).values())


# ----------------------------------------------------------------------------------------------
# bitext mining
# ----------------------------------------------------------------------------------------------


def nearest_neighbours(
    source: np.ndarray, target: np.ndarray, *, chunk_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Index and cosine score of each source row's nearest target row.

    Both inputs must be unit-norm float32 ``(n, dim)`` / ``(m, dim)``; similarities are computed
    ``chunk_size`` source rows at a time, so memory is ``chunk_size x m`` floats, never ``n x m``.
    Ties go to the lowest target index.
    """
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"source {source.shape} and target {target.shape} embeddings must be 2-D with the same dim")
    if target.shape[0] == 0:
        raise ValueError("target side is empty: there is nothing to match source sentences against")
    idx = np.empty(source.shape[0], dtype=np.int64)  # (n,)
    best = np.empty(source.shape[0], dtype=np.float32)  # (n,)
    for start in range(0, source.shape[0], chunk_size):
        sims = source[start : start + chunk_size] @ target.T  # (chunk, m)
        arg = sims.argmax(axis=1)  # (chunk,)
        idx[start : start + len(arg)] = arg
        best[start : start + len(arg)] = sims[np.arange(len(arg)), arg]
    return idx, best


def bitext_metrics(predictions: Sequence[int] | np.ndarray, gold: Sequence[int] | np.ndarray) -> dict[str, float]:
    """mteb's bitext metrics for predicted vs gold target indices.

    ``accuracy`` = share of exact matches. ``precision``, ``recall`` and ``f1`` are sklearn's
    ``average="weighted"`` scores with ``zero_division=0``: per gold label l with support s_l,
    tp_l correct predictions and c_l times predicted, p_l = tp_l / c_l, r_l = tp_l / s_l,
    f1_l = 2 tp_l / (s_l + c_l), then averaged with weights s_l. With one gold target per source
    (the usual 1:1 case) recall equals accuracy and precision penalises targets chosen repeatedly.
    """
    pred = np.asarray(predictions, dtype=np.int64).ravel()  # (n,)
    true = np.asarray(gold, dtype=np.int64).ravel()  # (n,)
    if pred.shape != true.shape:
        raise ValueError(f"{len(pred)} predictions but {len(true)} gold labels; they must be aligned 1:1")
    if len(true) == 0:
        raise ValueError("no sentences to score: both sides of the pair are empty")
    labels, inverse = np.unique(np.concatenate([true, pred]), return_inverse=True)
    true_i, pred_i = inverse[: len(true)], inverse[len(true) :]
    support = np.bincount(true_i, minlength=len(labels)).astype(np.float64)  # (n_labels,)
    predicted = np.bincount(pred_i, minlength=len(labels)).astype(np.float64)  # (n_labels,)
    tp = np.bincount(true_i[true == pred], minlength=len(labels)).astype(np.float64)  # (n_labels,)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(predicted > 0, tp / predicted, 0.0)
        r = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    weight = support / support.sum()
    return {
        "precision": float((p * weight).sum()),
        "recall": float((r * weight).sum()),
        "f1": float((f1 * weight).sum()),
        "accuracy": float((true == pred).mean()),
    }
