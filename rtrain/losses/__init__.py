"""Contrastive losses: in-batch InfoNCE with cross-worker negatives, its GradCache form, the base anchor."""

from rtrain.losses.base_anchor import BaseAnchorLoss
from rtrain.losses.cached_infonce import CachedInfoNCELoss
from rtrain.losses.gather import (
    all_gather_no_grad,
    all_gather_with_grad,
    check_equal_rows,
    rank_and_world,
)
from rtrain.losses.infonce import InfoNCELoss

__all__ = [
    "BaseAnchorLoss",
    "CachedInfoNCELoss",
    "InfoNCELoss",
    "all_gather_no_grad",
    "all_gather_with_grad",
    "check_equal_rows",
    "rank_and_world",
]
