"""The plain training form of an embedding loss: every text encoded with grad in one graph, one backward."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import torch
from torch import Tensor

from rtrain.data.batch import N_HASH, NEGATIVE, P_HASH, POSITIVE, QUERY
from rtrain.losses.base_anchor import BaseAnchorLoss
from rtrain.losses.protocol import Autocast, Backward, EmbeddingLoss, Encode


def _default_backward(loss: Tensor) -> None:
    loss.backward()


class PlainLoss:
    """`TrainingLoss` around an `EmbeddingLoss`: activations of the whole micro-batch live until the backward.

    Args:
        loss: the embedding loss (e.g. `InfoNCELoss`), called on fp32 embeddings.
    """

    def __init__(self, loss: EmbeddingLoss) -> None:
        self.loss = loss

    def num_backward_calls(self, batch: Mapping[str, Tensor]) -> int:
        """Always 1: the whole micro-batch is one graph."""
        return 1

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
        """Encode queries, positives and (when present) negatives with grad, add the anchor term over all of
        them, call `backward` once (outside `autocast`); return the detached () loss."""
        if (anchor is None) != (encode_base is None):
            raise ValueError("pass anchor and encode_base together (or neither)")
        with autocast():
            query = encode(batch[QUERY.ids], batch[QUERY.mask])  # (B, dim)
            positive = encode(batch[POSITIVE.ids], batch[POSITIVE.mask])  # (B, dim)
            negatives = (
                encode(batch[NEGATIVE.ids], batch[NEGATIVE.mask]) if NEGATIVE.ids in batch else None
            )  # (B*k, dim)
            loss = self.loss(
                query.float(),
                positive.float(),
                None if negatives is None else negatives.float(),
                batch.get(P_HASH),
                batch.get(N_HASH),
            )  # ()
            if anchor is not None and encode_base is not None:
                groups = [(query, QUERY), (positive, POSITIVE)]
                if negatives is not None:
                    groups.append((negatives, NEGATIVE))
                embeddings = torch.cat([emb.float() for emb, _ in groups])  # (rows, dim)
                base = torch.cat([encode_base(batch[g.ids], batch[g.mask]).float() for _, g in groups])  # (rows, dim)
                loss = loss + anchor(embeddings, base)  # ()
        (_default_backward if backward is None else backward)(loss)
        return loss.detach()
