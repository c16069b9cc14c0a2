"""Cross-worker gathers for contrastive losses.

All ranks must pass tensors with the same number of rows: the gathers concatenate equal-shaped
blocks (`torch.distributed._functional_collectives.all_gather_single`, whose autograd backward is a
sum reduce-scatter). The trainer guarantees this with `drop_last=True` and a fixed number of
hard negatives per query. `check_equal_rows` turns a mismatch into a clear ValueError
instead of a hang or a garbled gather; it costs one tiny collective.

When torch.distributed is not initialised, or the world size is 1, every function here is
the identity (no collective is issued).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
from torch import Tensor


def rank_and_world() -> tuple[int, int]:
    """Return (rank, world_size); (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_equal_rows(*tensors: Tensor | None) -> None:
    """Raise ValueError unless every rank passes tensors with the same row counts.

    `None` counts as 0 rows. One all_gather of a (len(tensors),) int64 tensor.
    """
    _, world = rank_and_world()
    if world == 1 or not tensors:
        return
    device = next((t.device for t in tensors if t is not None), torch.device("cpu"))
    rows = torch.tensor(
        [0 if t is None else t.shape[0] for t in tensors], dtype=torch.int64, device=device
    )  # (num_tensors,)
    all_rows = all_gather_no_grad(rows.unsqueeze(0))  # (world, num_tensors)
    if not bool((all_rows == all_rows[0]).all()):
        per_rank = all_rows.tolist()
        raise ValueError(
            f"Cross-worker gather needs equal row counts on every rank, got {per_rank} "
            "(one list per rank: queries, positives, negatives, ...). "
            "Use drop_last=True and the same number of hard negatives per query on all workers."
        )


def all_gather_with_grad(t: Tensor) -> Tensor:
    """Concatenate `t` from all ranks along dim 0, keeping the autograd graph.

    Backward sums the incoming gradients over ranks and hands each rank the slice for its
    own `t` (reduce-scatter), so each rank's local embeddings receive the gradient of the
    SUM of all ranks' losses. Returns `t` unchanged when not distributed.
    """
    _, world = rank_and_world()
    if world == 1:
        return t
    gathered = funcol.all_gather_single(t.contiguous(), 0, dist.group.WORLD)  # (world * rows, ...)
    return funcol.wait_tensor(gathered) if isinstance(gathered, funcol.AsyncCollectiveTensor) else gathered


def all_gather_no_grad(t: Tensor) -> Tensor:
    """Concatenate `t` from all ranks along dim 0 without autograd (for int hashes)."""
    _, world = rank_and_world()
    if world == 1:
        return t
    with torch.no_grad():
        return all_gather_with_grad(t.detach())  # (world * rows, ...)
