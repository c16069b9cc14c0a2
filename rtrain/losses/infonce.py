"""In-batch InfoNCE (multiple-negatives ranking) loss with cross-worker negatives.

Per worker: B queries, B positives and k hard negatives per query flattened to (B*k, dim);
embeddings are L2-normalised by the encoder, so a dot product is a cosine similarity.

Candidates for every query are the positives of the GLOBAL batch (all workers) followed by
the hard negatives of the global batch. Query i on rank r has label r*B + i. The loss is the
mean cross-entropy over the LOCAL queries. Because the gather's backward sums gradients over
ranks, each rank's local embeddings get W times the gradient of the single-process loss on
the concatenated global batch; DDP / DeepSpeed averaging over W ranks then yields exactly the
single-process parameter gradient. The mean of the W rank losses equals the single-process loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from rtrain.losses.gather import (
    all_gather_no_grad,
    all_gather_with_grad,
    check_equal_rows,
    rank_and_world,
)


class InfoNCELoss(torch.nn.Module):
    """InfoNCE over global in-batch positives plus hard negatives.

    Args:
        temperature: logits are `cosine / temperature`; must be > 0.
        symmetric: also add the document->query term (each positive against all queries of
            the global batch); the result is (q2d + d2q) / 2.
        gather_across_workers: use positives, negatives and queries of all ranks as
            candidates. All ranks must then pass the same B and the same number of negatives.
        mask_false_negatives: when hashes are passed, drop every candidate (other than the
            label) whose text hash equals the query's positive hash.
    """

    def __init__(
        self,
        temperature: float = 0.05,
        symmetric: bool = False,
        gather_across_workers: bool = True,
        mask_false_negatives: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValueError(f"temperature must be a positive float, got {temperature!r}; use e.g. temperature=0.05.")
        if not math.isfinite(temperature) or temperature <= 0:
            raise ValueError(
                f"temperature must be a finite value > 0, got {temperature!r}; "
                "use e.g. temperature=0.05 (typical range 0.01-0.1)."
            )
        self.temperature = float(temperature)
        self.symmetric = bool(symmetric)
        self.gather_across_workers = bool(gather_across_workers)
        self.mask_false_negatives = bool(mask_false_negatives)

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, symmetric={self.symmetric}, "
            f"gather_across_workers={self.gather_across_workers}, "
            f"mask_false_negatives={self.mask_false_negatives}"
        )

    def forward(
        self,
        query: Tensor,
        positive: Tensor,
        negatives: Tensor | None = None,
        pos_hash: Tensor | None = None,
        neg_hash: Tensor | None = None,
    ) -> Tensor:
        """Return the scalar loss averaged over the local queries.

        Shapes: query, positive (B, dim); negatives (B*k, dim) or None; pos_hash (B,) int64;
        neg_hash (B*k,) int64. Every rank must pass hashes, or none must (they are gathered).
        If negatives come without neg_hash, only positives are masked.
        """
        negatives, neg_hash = _validate(query, positive, negatives, pos_hash, neg_hash)
        batch_size = query.shape[0]
        use_mask = self.mask_false_negatives and pos_hash is not None

        if self.gather_across_workers:
            rank, world = rank_and_world()
        else:
            rank, world = 0, 1
        if world > 1:
            check_equal_rows(query, negatives)
            gather, gather_ints = all_gather_with_grad, all_gather_no_grad
        else:
            gather, gather_ints = _identity, _identity

        all_pos = gather(positive)  # (world * batch, dim)
        candidates = all_pos  # (num_candidates, dim)
        if negatives is not None:
            all_neg = gather(negatives)  # (world * batch * k, dim)
            candidates = torch.cat([all_pos, all_neg], dim=0)  # (num_candidates, dim)

        labels = rank * batch_size + torch.arange(batch_size, device=query.device)  # (batch,)
        rows = torch.arange(batch_size, device=query.device)  # (batch,)
        scores = query @ candidates.T / self.temperature  # (batch, num_candidates)

        all_pos_hash: Tensor | None = None
        if use_mask:
            all_pos_hash = gather_ints(pos_hash)  # (world * batch,)
            mask = pos_hash[:, None] == all_pos_hash[None, :]  # (batch, world * batch)
            if negatives is not None:
                if neg_hash is not None:
                    all_neg_hash = gather_ints(neg_hash)  # (world * batch * k,)
                    neg_mask = pos_hash[:, None] == all_neg_hash[None, :]  # (batch, world * batch * k)
                else:
                    neg_mask = torch.zeros(
                        batch_size,
                        candidates.shape[0] - all_pos.shape[0],
                        dtype=torch.bool,
                        device=query.device,
                    )  # (batch, world * batch * k)
                mask = torch.cat([mask, neg_mask], dim=1)  # (batch, num_candidates)
            mask[rows, labels] = False  # never mask the label
            scores = scores.masked_fill(mask, float("-inf"))  # (batch, num_candidates)

        loss = F.cross_entropy(scores, labels)  # ()
        if not self.symmetric:
            return loss

        all_query = gather(query)  # (world * batch, dim)
        d2q_scores = positive @ all_query.T / self.temperature  # (batch, world * batch)
        if all_pos_hash is not None:
            d2q_mask = pos_hash[:, None] == all_pos_hash[None, :]  # (batch, world * batch)
            d2q_mask[rows, labels] = False
            d2q_scores = d2q_scores.masked_fill(d2q_mask, float("-inf"))  # (batch, world * batch)
        d2q_loss = F.cross_entropy(d2q_scores, labels)  # ()
        return (loss + d2q_loss) / 2


def _identity(t: Tensor) -> Tensor:
    return t


def _validate(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    pos_hash: Tensor | None,
    neg_hash: Tensor | None,
) -> tuple[Tensor | None, Tensor | None]:
    """Check shapes; return (negatives, neg_hash) with an empty negatives tensor as None."""
    if query.dim() != 2:
        raise ValueError(f"query must be (batch, dim), got shape {tuple(query.shape)}.")
    if positive.shape != query.shape:
        raise ValueError(
            f"positive must have the query's shape {tuple(query.shape)}, got "
            f"{tuple(positive.shape)}; pass exactly one positive per query."
        )
    if negatives is not None and negatives.numel() == 0 and negatives.shape[0] == 0:
        negatives, neg_hash = None, None
    if negatives is not None and (negatives.dim() != 2 or negatives.shape[1] != query.shape[1]):
        raise ValueError(
            f"negatives must be (batch * k, {query.shape[1]}), got {tuple(negatives.shape)}; "
            "flatten the per-query hard negatives with .reshape(-1, dim)."
        )
    if pos_hash is not None and pos_hash.shape != (query.shape[0],):
        raise ValueError(f"pos_hash must have shape ({query.shape[0]},), got {tuple(pos_hash.shape)}.")
    if neg_hash is not None:
        if negatives is None:
            raise ValueError("neg_hash was given without negatives; pass both or neither.")
        if neg_hash.shape != (negatives.shape[0],):
            raise ValueError(f"neg_hash must have shape ({negatives.shape[0]},), got {tuple(neg_hash.shape)}.")
    return negatives, neg_hash
