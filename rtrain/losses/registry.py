"""`loss.kind` -> how to build that training loss, its name on the model card and its backward calls per micro-batch.

Adding a loss: one file in rtrain/losses/ (an `EmbeddingLoss` wrapped in `PlainLoss`, or its own `TrainingLoss`),
one line in `LOSSES`, and its name in `LossKindName` (rtrain/config/schema.py; a test keeps the two equal).
A kind without a GradCache form raises in `build` when `loss.cached` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rtrain.config.schema import JobConfig, LossConfig
from rtrain.losses.cached_infonce import CachedInfoNCELoss, chunked_backward_calls
from rtrain.losses.infonce import InfoNCELoss
from rtrain.losses.plain import PlainLoss
from rtrain.losses.protocol import TrainingLoss


@dataclass(frozen=True)
class LossKind:
    """One registered loss."""

    display_name: str  # how the model card names it
    build: Callable[[LossConfig], TrainingLoss]
    backward_calls: Callable[[LossConfig, int], int]  # (loss config, pairs per micro-batch) -> backward calls


def _build_infonce(cfg: LossConfig) -> TrainingLoss:
    loss = InfoNCELoss(
        temperature=cfg.temperature,
        symmetric=cfg.symmetric,
        gather_across_workers=cfg.gather_across_workers,
        mask_false_negatives=cfg.mask_false_negatives,
    )
    return CachedInfoNCELoss(loss, cfg.mini_batch_size) if cfg.cached else PlainLoss(loss)


def _infonce_backward_calls(cfg: LossConfig, batch_size: int) -> int:
    if not cfg.cached:
        return 1
    rows = (batch_size, batch_size, batch_size * cfg.negatives_per_query)  # queries, positives, negatives
    return chunked_backward_calls(rows, cfg.mini_batch_size)


LOSSES: dict[str, LossKind] = {
    "infonce": LossKind("InfoNCE", _build_infonce, _infonce_backward_calls),
}


def loss_kind(kind: str) -> LossKind:
    """The registry entry for `kind`; a ValueError naming the known kinds otherwise."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss.kind {kind!r}; known kinds: {', '.join(sorted(LOSSES))}")
    return LOSSES[kind]


def build_loss(cfg: LossConfig) -> TrainingLoss:
    """The configured training loss (`loss.kind`, GradCache form when `loss.cached`)."""
    return loss_kind(cfg.kind).build(cfg)


def backward_calls_per_batch(cfg: JobConfig) -> int:
    """Backward calls one micro-batch of `train.batch_size_per_worker` pairs makes under `cfg.loss`."""
    return loss_kind(cfg.loss.kind).backward_calls(cfg.loss, cfg.train.batch_size_per_worker)
