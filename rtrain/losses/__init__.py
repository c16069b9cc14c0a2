"""Contrastive losses: in-batch InfoNCE with cross-worker negatives, and its GradCache form."""

from rtrain.losses.cached_infonce import CachedInfoNCELoss
from rtrain.losses.gather import (
    all_gather_no_grad,
    all_gather_with_grad,
    check_equal_rows,
    rank_and_world,
)
from rtrain.losses.infonce import InfoNCELoss

__all__ = [
    "CachedInfoNCELoss",
    "InfoNCELoss",
    "all_gather_no_grad",
    "all_gather_with_grad",
    "check_equal_rows",
    "rank_and_world",
]
