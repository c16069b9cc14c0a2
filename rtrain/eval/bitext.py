"""Bitext mining evaluation: find each sentence's translation by cosine nearest neighbour.

Primary metric: ``f1``. mteb 2.26 sets ``main_score="f1"`` on every one of its bitext-mining tasks
(FLORES, Tatoeba, BUCC, ...), so rtrain's number is directly comparable to the leaderboard's;
pass ``primary_metric="accuracy"`` to rank by accuracy instead (for 1:1 data accuracy = recall,
while f1 also penalises targets that many sources collapse onto).

Unlike mteb (one direction per language-pair subset) each pair is scored in both directions and
the two are averaged; the single directions are kept under ``per_direction``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rtrain.eval.metrics import BITEXT_METRICS, bitext_metrics, nearest_neighbours
from rtrain.eval.protocol import EncodeKind, TextEncoder, encode_unique

logger = logging.getLogger(__name__)

PairKey = str | tuple[str, str]


def _pair_name(pair: PairKey) -> str:
    if isinstance(pair, tuple):
        if len(pair) != 2:
            raise ValueError(f"language pair {pair!r} must be a (source, target) tuple or a 'src-tgt' string")
        return f"{pair[0]}-{pair[1]}"
    return str(pair)


def direction_names(pair: str) -> tuple[str, str]:
    """The forward and backward direction names of a pair: ``"de-en"`` -> ``("de->en", "en->de")``.

    A pair name that is not ``src-tgt`` gets ``"<pair>:forward"`` / ``"<pair>:backward"``.
    """
    parts = pair.split("-")
    if len(parts) == 2 and all(parts):
        return f"{parts[0]}->{parts[1]}", f"{parts[1]}->{parts[0]}"
    return f"{pair}:forward", f"{pair}:backward"


def _mean(dicts: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {m: float(np.mean([d[m] for d in dicts])) for m in BITEXT_METRICS}


class BitextMiningEvaluator:
    """Evaluate a :class:`TextEncoder` on parallel sentence lists.

    Args:
        name: task name used in logs and reports.
        pairs: ``{"src-tgt": (source_sentences, target_sentences)}``, aligned by position
            (``source[i]`` translates ``target[i]``); tuple keys ``("src", "tgt")`` also work.
        both_directions: also mine target -> source and average the two (default True).
        kind: encoder ``kind`` used for both sides (bitext is symmetric; "query" by default).
        batch_size / show_progress: passed to the encoder.
        primary_metric: ``"f1"`` (mteb's main score for bitext mining) or another of
            precision / recall / f1 / accuracy.

    Calling it returns ``{"overall": {...}, "per_language": {pair: {...}},
    "per_direction": {"src->tgt": {...}}}``; every metric dict has precision, recall, f1, accuracy
    and ``main_score``. ``overall`` is the unweighted mean over pairs.
    """

    primary_metric: str = "f1"
    greater_is_better: bool = True

    def __init__(
        self,
        name: str,
        pairs: Mapping[PairKey, tuple[Sequence[str], Sequence[str]]],
        *,
        both_directions: bool = True,
        kind: EncodeKind = "query",
        batch_size: int = 64,
        show_progress: bool = False,
        primary_metric: str = "f1",
    ) -> None:
        if primary_metric not in BITEXT_METRICS:
            raise ValueError(f"primary_metric={primary_metric!r}; choose one of {BITEXT_METRICS}")
        if not pairs:
            raise ValueError(f"bitext task '{name}': no language pairs given; pass {{'xxx-yyy': (sources, targets)}}")
        self.name = name
        self.primary_metric = primary_metric
        self.pairs: dict[str, tuple[list[str], list[str]]] = {}
        for key, value in pairs.items():
            pair = _pair_name(key)
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise ValueError(f"bitext task '{name}': pair {pair!r} must map to (sources, targets)")
            src, tgt = list(value[0]), list(value[1])
            if len(src) != len(tgt):
                raise ValueError(
                    f"bitext task '{name}': pair {pair!r} has {len(src)} source but {len(tgt)} "
                    "target sentences; parallel lists must have equal length (aligned by position)"
                )
            if not src:
                raise ValueError(f"bitext task '{name}': pair {pair!r} is empty; drop it or give sentences")
            bad = [i for i, t in enumerate(src + tgt) if not isinstance(t, str)]
            if bad:
                raise TypeError(f"bitext task '{name}': pair {pair!r} has {len(bad)} non-string sentence(s)")
            if pair in self.pairs:
                raise ValueError(f"bitext task '{name}': pair {pair!r} is given twice")
            self.pairs[pair] = (src, tgt)
        self.both_directions = both_directions
        self.kind: EncodeKind = kind
        self.batch_size = batch_size
        self.show_progress = show_progress

    def _embed_all(self, encoder: TextEncoder) -> tuple[dict[str, int], np.ndarray]:
        """Encode every distinct sentence once (e.g. English shared by all X-eng pairs)."""
        return encode_unique(
            encoder,
            (text for src, tgt in self.pairs.values() for text in (src, tgt)),
            self.kind,
            batch_size=self.batch_size,
            show_progress=self.show_progress,
            what=f"'{self.name}' sentences",
        )

    def __call__(self, encoder: TextEncoder) -> dict[str, Any]:
        """Mine each pair (both directions) and return overall, per-pair and per-direction metrics."""
        row_of, emb = self._embed_all(encoder)
        per_language: dict[str, dict[str, float]] = {}
        per_direction: dict[str, dict[str, float]] = {}
        for pair, (src, tgt) in self.pairs.items():
            src_emb = emb[[row_of[t] for t in src]]  # (n, dim)
            tgt_emb = emb[[row_of[t] for t in tgt]]  # (n, dim)
            gold = np.arange(len(src))
            forward, backward = direction_names(pair)
            nn, _ = nearest_neighbours(src_emb, tgt_emb)
            directions = {forward: bitext_metrics(nn, gold)}
            if self.both_directions:
                nn, _ = nearest_neighbours(tgt_emb, src_emb)
                directions[backward] = bitext_metrics(nn, gold)
            for direction, metrics in directions.items():
                per_direction[direction] = {**metrics, "main_score": metrics[self.primary_metric]}
            per_language[pair] = _mean(list(directions.values()))
            per_language[pair]["main_score"] = per_language[pair][self.primary_metric]
        overall = _mean(list(per_language.values()))
        overall["main_score"] = overall[self.primary_metric]
        logger.info(
            "task %s: %s = %.4f over %d pair(s)",
            self.name,
            self.primary_metric,
            overall[self.primary_metric],
            len(self.pairs),
        )
        return {"overall": overall, "per_language": per_language, "per_direction": per_direction}

    def __repr__(self) -> str:
        sizes = {p: len(s) for p, (s, _) in self.pairs.items()}
        return f"BitextMiningEvaluator(name={self.name!r}, pairs={sizes})"

    @classmethod
    def from_flores(
        cls,
        codes: Sequence[str],
        *,
        root: str | Path | None = None,
        split: str | Sequence[str] = "dev",
        target: str = "eng_Latn",
        limit: int | None = None,
        name: str = "flores",
        **kwargs: Any,
    ) -> BitextMiningEvaluator:
        """``X-eng_Latn`` pairs from the local SIB-200 / FLORES subset (see :func:`read_flores`)."""
        from rtrain.eval.readers import read_flores

        return cls(name, read_flores(codes, root=root, split=split, target=target, limit=limit), **kwargs)
