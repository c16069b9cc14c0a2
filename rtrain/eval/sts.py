"""Semantic textual similarity: correlate embedding similarity with human scores, as mteb 2.x does.

mteb's ``AbsTaskSTS`` reports, per subset, Pearson and Spearman correlations between the gold scores
and ``cosine_*`` (cosine similarity), ``manhattan_*`` (negative L1 distance), ``euclidean_*``
(negative L2 distance) and the model's own similarity (``pearson`` / ``spearman``; cosine for every
rtrain encoder). Its main score is ``cosine_spearman`` (STS17, STSBenchmarkMultilingualSTS, ...).
The metric names below are mteb's. Gold scores are used as given: mteb rescales them to [0, 1]
first, which no correlation changes. Distances use the unit-normalised embeddings (identical to
mteb for normalising encoders, which all rtrain encoders are).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rtrain.eval.protocol import EncodeKind, TextEncoder, encode_unique

logger = logging.getLogger(__name__)

STS_METRICS = (
    "pearson",
    "spearman",
    "cosine_pearson",
    "cosine_spearman",
    "manhattan_pearson",
    "manhattan_spearman",
    "euclidean_pearson",
    "euclidean_spearman",
)


def _correlations(gold: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """(Pearson, Spearman); NaN (with a warning) when either side is constant."""
    if np.ptp(gold) == 0 or np.ptp(predicted) == 0:
        logger.warning("STS: constant gold or predicted scores; correlations are undefined (NaN)")
        return math.nan, math.nan
    from scipy.stats import pearsonr, spearmanr  # imported here: scipy.stats costs ~1 s at `import rtrain.eval`

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(pearsonr(gold, predicted)[0]), float(spearmanr(gold, predicted)[0])


def sts_metrics(emb1: np.ndarray, emb2: np.ndarray, gold: Sequence[float] | np.ndarray) -> dict[str, float]:
    """mteb's STS metrics for aligned unit-norm embeddings ``(n, dim)`` and gold scores ``(n,)``."""
    gold_arr = np.asarray(gold, dtype=np.float64)  # (n,)
    if emb1.shape != emb2.shape or emb1.shape[0] != len(gold_arr):
        raise ValueError(f"embeddings {emb1.shape} / {emb2.shape} and {len(gold_arr)} gold scores must align 1:1")
    if len(gold_arr) < 2:
        raise ValueError(f"{len(gold_arr)} scored pair(s): a correlation needs at least 2")
    a, b = emb1.astype(np.float64), emb2.astype(np.float64)  # (n, dim)
    predicted = {
        "cosine": (a * b).sum(axis=1),  # (n,)
        "manhattan": -np.abs(a - b).sum(axis=1),  # (n,)
        "euclidean": -np.sqrt(((a - b) ** 2).sum(axis=1)),  # (n,)
    }
    out: dict[str, float] = {}
    for name, scores in predicted.items():
        out[f"{name}_pearson"], out[f"{name}_spearman"] = _correlations(gold_arr, scores)
    out["pearson"], out["spearman"] = out["cosine_pearson"], out["cosine_spearman"]
    return {m: out[m] for m in STS_METRICS}


class STSEvaluator:
    """Evaluate a :class:`TextEncoder` on scored sentence pairs, per language / track and averaged.

    Args:
        name: task name used in logs and reports.
        pairs: ``{lang_or_track: (sentences1, sentences2, gold_scores)}`` aligned by position
            (an :class:`rtrain.eval.readers.STSPairs` unpacks to that triple too).
        kind: encoder ``kind`` for both sides (STS is symmetric; "query" by default).
        batch_size / show_progress: passed to the encoder.

    Calling it returns ``{"overall": {...}, "per_language": {track: {...}}}``; every metric dict has
    the :data:`STS_METRICS` and ``main_score`` (= ``cosine_spearman``). ``overall`` is the unweighted
    mean over tracks (mteb's average over subsets).
    """

    primary_metric: str = "cosine_spearman"
    greater_is_better: bool = True

    def __init__(
        self,
        name: str,
        pairs: Mapping[str, Any],
        *,
        kind: EncodeKind = "query",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> None:
        if not pairs:
            raise ValueError(f"STS task '{name}': no tracks given; pass {{'en': (sentences1, sentences2, scores)}}")
        self.name = name
        self.pairs: dict[str, tuple[list[str], list[str], list[float]]] = {}
        for track, value in pairs.items():
            try:
                s1, s2, scores = (list(part) for part in value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"STS task '{name}': track {track!r} must be (sentences1, sentences2, scores)"
                ) from None
            if not len(s1) == len(s2) == len(scores):
                raise ValueError(
                    f"STS task '{name}': track {track!r} has {len(s1)} first sentences, {len(s2)} second "
                    f"sentences and {len(scores)} scores; they must have equal length (aligned by position)"
                )
            if len(scores) < 2:
                raise ValueError(f"STS task '{name}': track {track!r} has {len(scores)} pair(s); give at least 2")
            bad = [i for i, t in enumerate(s1 + s2) if not isinstance(t, str)]
            if bad:
                raise TypeError(f"STS task '{name}': track {track!r} has {len(bad)} non-string sentence(s)")
            try:
                gold = [float(s) for s in scores]
            except (TypeError, ValueError):
                raise ValueError(f"STS task '{name}': track {track!r} has non-numeric gold scores") from None
            if not all(math.isfinite(g) for g in gold):
                raise ValueError(f"STS task '{name}': track {track!r} has NaN/inf gold scores")
            self.pairs[str(track)] = (s1, s2, gold)
        self.kind: EncodeKind = kind
        self.batch_size = batch_size
        self.show_progress = show_progress

    def __call__(self, encoder: TextEncoder) -> dict[str, Any]:
        """Encode every distinct sentence once, then score each track."""
        row_of, emb = encode_unique(
            encoder,
            (texts for s1, s2, _ in self.pairs.values() for texts in (s1, s2)),
            self.kind,
            batch_size=self.batch_size,
            show_progress=self.show_progress,
            what=f"'{self.name}' sentences",
        )  # (n_unique, dim)
        per_language: dict[str, dict[str, float]] = {}
        for track, (s1, s2, gold) in self.pairs.items():
            metrics = sts_metrics(emb[[row_of[t] for t in s1]], emb[[row_of[t] for t in s2]], gold)
            per_language[track] = {**metrics, "main_score": metrics[self.primary_metric]}
        overall = {m: float(np.mean([d[m] for d in per_language.values()])) for m in STS_METRICS}
        overall["main_score"] = overall[self.primary_metric]
        logger.info(
            "task %s: %s = %.4f over %d track(s)",
            self.name,
            self.primary_metric,
            overall["main_score"],
            len(self.pairs),
        )
        return {"overall": overall, "per_language": per_language}

    def __repr__(self) -> str:
        return f"STSEvaluator(name={self.name!r}, pairs={ {t: len(v[2]) for t, v in self.pairs.items()} })"

    @classmethod
    def from_stsb(
        cls,
        languages: Sequence[str],
        *,
        split: str = "test",
        root: str | Path | None = None,
        limit: int | None = None,
        name: str = "stsb_multi_mt",
        **kwargs: Any,
    ) -> STSEvaluator:
        """STS-B multi-MT tracks, one per language (see :func:`rtrain.eval.readers.read_stsb`)."""
        from rtrain.eval.readers import read_stsb

        return cls(name, {lang: read_stsb(lang, split, root=root, limit=limit) for lang in languages}, **kwargs)

    @classmethod
    def from_sts17(
        cls,
        tracks: Sequence[str],
        *,
        root: str | Path | None = None,
        limit: int | None = None,
        name: str = "sts17",
        **kwargs: Any,
    ) -> STSEvaluator:
        """SemEval-2017 tracks by subset name (see :data:`rtrain.eval.readers.STS17_TRACKS`)."""
        from rtrain.eval.readers import read_sts17

        return cls(name, {t: read_sts17(t, root=root, limit=limit) for t in tracks}, **kwargs)
