"""The calling conventions of rtrain's losses.

`EmbeddingLoss`: the math, on embeddings (InfoNCE). `TrainingLoss`: what `train_step` calls, one
micro-batch of token ids in, gradients accumulated, the detached loss out (plain or GradCache).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from torch import Tensor

from rtrain.losses.base_anchor import BaseAnchorLoss

Encode = Callable[[Tensor, Tensor], Tensor]  # (input_ids (n, seq), attention_mask (n, seq)) -> (n, dim)
Backward = Callable[[Tensor], None]  # accumulates the gradients of a () tensor
Autocast = Callable[[], contextlib.AbstractContextManager]  # the forward passes' mixed-precision context


class EmbeddingLoss(Protocol):
    """A contrastive loss on embeddings: query (B, dim), positive (B, dim), negatives (B*k, dim) or None,
    pos_hash (B,) and neg_hash (B*k,) or None -> () loss."""

    def __call__(
        self,
        query: Tensor,
        positive: Tensor,
        negatives: Tensor | None = None,
        pos_hash: Tensor | None = None,
        neg_hash: Tensor | None = None,
    ) -> Tensor: ...


@runtime_checkable
class TrainingLoss(Protocol):
    """One training micro-batch: encode the batch's texts, compute the loss, back-propagate it."""

    def forward_backward(
        self,
        encode: Encode,
        batch: Mapping[str, Tensor],
        backward: Backward | None = None,
        *,
        anchor: BaseAnchorLoss | None = None,
        encode_base: Encode | None = None,
        autocast: Autocast = contextlib.nullcontext,
    ) -> Tensor:
        """Accumulate parameter gradients through `backward` (default `Tensor.backward`); return the () loss,
        detached. `batch` holds the keys of `rtrain.data.batch`. With `anchor`, `encode_base` embeds the same
        texts with the frozen base and the anchor term joins the loss. Forward passes run under `autocast()`.
        Calls `backward` `num_backward_calls(batch)` times."""
        ...

    def num_backward_calls(self, batch: Mapping[str, Tensor]) -> int:
        """How many times `forward_backward` calls `backward` for `batch`."""
        ...
