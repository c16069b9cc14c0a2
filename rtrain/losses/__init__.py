"""Contrastive losses: in-batch InfoNCE with cross-worker negatives, its plain and GradCache training forms, the
base anchor, and the `loss.kind` registry (rtrain.losses.registry)."""

from rtrain.losses.base_anchor import BaseAnchorLoss
from rtrain.losses.cached_infonce import CachedInfoNCELoss
from rtrain.losses.gather import (
    all_gather_no_grad,
    all_gather_with_grad,
    check_equal_rows,
    rank_and_world,
)
from rtrain.losses.infonce import InfoNCELoss
from rtrain.losses.plain import PlainLoss
from rtrain.losses.protocol import EmbeddingLoss, TrainingLoss

__all__ = [
    "BaseAnchorLoss",
    "CachedInfoNCELoss",
    "EmbeddingLoss",
    "InfoNCELoss",
    "PlainLoss",
    "TrainingLoss",
    "all_gather_no_grad",
    "all_gather_with_grad",
    "check_equal_rows",
    "rank_and_world",
]
