"""The encoder protocol the evaluators depend on, the evaluator protocol, and a check of what an encoder returns.

Evaluators never load models themselves: they take any object with an ``encode`` method of the
shape below (the training code's wrapped model, a sentence-transformers adapter, or a test fake).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

EncodeKind = Literal["query", "document"]


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors.

    ``kind`` lets asymmetric models add their query / passage prompt or prefix.
    """

    def encode(
        self,
        texts: list[str],
        kind: EncodeKind,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed ``texts``; returns a ``(len(texts), dim)`` float32 array with unit-norm rows."""
        ...


class Evaluator(Protocol):
    """A scorer of one task: it declares its main metric and which way is better (sentence-transformers style).

    Calling it returns ``{"overall": {metric: value, "main_score": ...}, ...}``; ``main_score`` is
    ``primary_metric``, better when higher if ``greater_is_better``.
    """

    name: str
    primary_metric: str
    greater_is_better: bool

    def __call__(self, encoder: TextEncoder) -> dict[str, Any]:
        """Score ``encoder`` on the task."""
        ...


def encode_checked(
    encoder: TextEncoder,
    texts: list[str],
    kind: EncodeKind,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
    what: str = "texts",
) -> np.ndarray:
    """Encode ``texts`` and return unit-norm float32 rows, raising clearly on a broken encoder.

    Rows are re-normalised (a no-op for a conforming encoder), so inner product is exactly cosine
    similarity, which is what mteb scores with. ``what`` names the texts in error messages.
    """
    if not isinstance(encoder, TextEncoder):
        raise TypeError(
            f"encoder {type(encoder).__name__} has no encode(texts, kind, batch_size, show_progress) "
            "method; wrap the model in an object implementing rtrain.eval.TextEncoder"
        )
    emb = np.asarray(encoder.encode(list(texts), kind=kind, batch_size=batch_size, show_progress=show_progress))
    return check_embeddings(emb, len(texts), what=what)


def encode_unique(
    encoder: TextEncoder,
    groups: Iterable[Iterable[str]],
    kind: EncodeKind,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
    what: str = "texts",
) -> tuple[dict[str, int], np.ndarray]:
    """Encode every distinct text of ``groups`` once: ``({text: row}, (n_unique, dim) unit-norm rows)``."""
    row_of: dict[str, int] = {}
    for group in groups:
        for text in group:
            row_of.setdefault(text, len(row_of))
    emb = encode_checked(encoder, list(row_of), kind, batch_size=batch_size, show_progress=show_progress, what=what)
    return row_of, emb


def check_embeddings(emb: np.ndarray, n_expected: int, *, what: str = "texts") -> np.ndarray:
    """Validate an encoder output and return it as C-contiguous, unit-norm float32 ``(n, dim)``."""
    if emb.ndim != 2 or emb.shape[0] != n_expected:
        raise ValueError(
            f"encoder returned an array of shape {emb.shape} for {n_expected} {what}; "
            f"expected ({n_expected}, dim): one row per text"
        )
    if emb.shape[1] == 0:
        raise ValueError(f"encoder returned 0-dimensional embeddings for {what}; expected (n, dim) with dim > 0")
    emb = np.ascontiguousarray(emb, dtype=np.float32)  # (n, dim)
    if not np.isfinite(emb).all():
        bad = int((~np.isfinite(emb)).any(axis=1).sum())
        raise ValueError(
            f"encoder returned NaN/inf in {bad} of {n_expected} {what} embeddings; check the model / inputs"
        )
    norms = np.linalg.norm(emb, axis=1, keepdims=True)  # (n, 1)
    zero = int((norms[:, 0] < 1e-12).sum())
    if zero:
        raise ValueError(
            f"encoder returned {zero} all-zero embedding(s) among {n_expected} {what}; cosine similarity "
            "is undefined for them (empty texts?)"
        )
    return np.ascontiguousarray(emb / norms, dtype=np.float32)
