"""Pick negatives from ranked candidates: drop positives and the query's own text, filter likely false
negatives, then take the rank window (the semantics of sentence-transformers' ``mine_hard_negatives``).

Order of operations for one query's candidates (best first, as faiss returns them):

1. drop empty slots (id -1), the query's positives (every positive of that query text) and a
   candidate whose text is the query itself; the pool is de-duplicated by text, so no text repeats;
2. drop, each counted under its reason: ``score + absolute_margin > pos``, then
   ``score > pos - |pos| * relative_margin``, then ``score > max_score``, then ``score < min_score``,
   where ``pos`` is the query's lowest positive score;
3. rank the survivors 0, 1, 2, ...; the window is ranks ``[range_min, range_max)``;
4. ``top``: the first ``num_negatives`` of the window; ``random``: that many drawn from the window
   (seeded), kept in score order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from rtrain.mining.config import MineConfig

REASONS = ("positive", "query_text", "absolute_margin", "relative_margin", "max_score", "min_score")


@dataclass
class SelectStats:
    """Candidates examined and removed per reason, over a whole run."""

    candidates: int = 0
    removed: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return {"candidates": self.candidates, **{r: int(self.removed.get(r, 0)) for r in REASONS}}


def _drop(valid: np.ndarray, mask: np.ndarray, reason: str, stats: SelectStats) -> None:
    """Clear `mask & valid` from `valid` in place and count the newly removed candidates."""
    hit = valid & mask
    stats.removed[reason] += int(hit.sum())
    valid &= ~hit


def select_negatives(
    ids: np.ndarray,
    scores: np.ndarray,
    positive_ids: np.ndarray,
    query_ids: np.ndarray,
    positive_floor: np.ndarray,
    cfg: MineConfig,
    window: tuple[int, int],
    rng: np.random.Generator,
    stats: SelectStats,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Chosen (pool ids, scores) per query row, best first.

    Args:
        ids: ``(b, K)`` candidate pool ids, best first; -1 marks an empty slot.
        scores: ``(b, K)`` their similarities to the query.
        positive_ids: ``(b, P)`` pool ids of each query's positives, padded with -1.
        query_ids: ``(b,)`` pool id of the query's own text, -1 if it is not in the pool.
        positive_floor: ``(b,)`` the query's lowest positive score (the margins' reference).
        window: ``(range_min, range_max)``.
    """
    range_min, range_max = window
    valid = ids >= 0  # (b, K)
    stats.candidates += int(valid.sum())
    is_positive = (ids[:, :, None] == positive_ids[:, None, :]).any(axis=2) & (ids >= 0)  # (b, K)
    _drop(valid, is_positive, "positive", stats)
    _drop(valid, (ids == query_ids[:, None]) & (query_ids[:, None] >= 0), "query_text", stats)
    pos = positive_floor[:, None].astype(np.float64)  # (b, 1)
    s = scores.astype(np.float64)  # (b, K)
    if cfg.absolute_margin is not None:
        _drop(valid, s + cfg.absolute_margin > pos, "absolute_margin", stats)
    if cfg.relative_margin is not None:
        _drop(valid, s > pos - np.abs(pos) * cfg.relative_margin, "relative_margin", stats)
    if cfg.max_score is not None:
        _drop(valid, s > cfg.max_score, "max_score", stats)
    if cfg.min_score is not None:
        _drop(valid, s < cfg.min_score, "min_score", stats)
    rank = np.cumsum(valid, axis=1) - 1  # (b, K) rank among survivors
    in_window = valid & (rank >= range_min) & (rank < range_max)  # (b, K)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for row in range(ids.shape[0]):
        cols = np.flatnonzero(in_window[row])  # window positions, best first
        if cfg.sampling_strategy == "top":
            cols = cols[: cfg.num_negatives]
        elif len(cols) > cfg.num_negatives:
            cols = np.sort(rng.choice(cols, size=cfg.num_negatives, replace=False))
        out.append((ids[row, cols], scores[row, cols]))
    return out
