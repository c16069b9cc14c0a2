"""Length-aware encoding: the same embeddings as one padded call, computed on far fewer pad positions.

A batch's texts are padded to its longest, so on real data about half the token positions a step
computes are padding. `length_aware(encode, token_budget)` sorts a group's texts by length, cuts them
into chunks of at most `token_budget` token positions (rows x the chunk's own longest text), trims each
chunk's padding, encodes the chunks and puts the embeddings back in the original order. The texts, the
batch and the loss do not change (in-batch negatives, the cross-worker gather and false-negative
masking see the same rows in the same order), so losses and gradients equal the padded call's up to
float rounding; with dropout on, the random masks are drawn per chunk instead of per group.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

EncodeFn = Callable[[Tensor, Tensor], Tensor]


def length_chunks(lengths: Tensor, token_budget: int) -> list[Tensor]:
    """Row indices of `lengths` (n,), longest first, cut into chunks of at most `token_budget` positions
    (a text longer than the budget gets a chunk of its own)."""
    order = torch.argsort(lengths, descending=True, stable=True)  # (n,)
    chunks, start = [], 0
    while start < len(order):
        width = max(int(lengths[order[start]]), 1)  # the chunk's longest text: its first, sorted
        rows = max(1, token_budget // width)
        chunks.append(order[start : start + rows])
        start += rows
    return chunks


def inverse_permutation(order: Tensor) -> Tensor:
    """The index that puts rows taken in `order` (a permutation) back in their original order."""
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)
    return inverse


def length_aware(encode: EncodeFn, token_budget: int) -> EncodeFn:
    """`encode` run on length-sorted, individually trimmed chunks; (n, dim) embeddings in input order."""
    if token_budget < 1:
        raise ValueError(f"token_budget must be >= 1, got {token_budget}")

    def run(input_ids: Tensor, attention_mask: Tensor) -> Tensor:  # (n, L), (n, L) -> (n, dim)
        lengths = attention_mask.sum(dim=1)  # (n,)
        chunks = length_chunks(lengths, token_budget)
        parts = []
        for rows in chunks:
            width = max(int(lengths[rows[0]]), 1)
            parts.append(encode(input_ids[rows, :width], attention_mask[rows, :width]))  # (rows, dim)
        sorted_embeddings = torch.cat(parts)  # (n, dim), in chunk order
        return sorted_embeddings[inverse_permutation(torch.cat(chunks))]  # (n, dim), in input order

    return run


def padded_fraction(attention_mask: Tensor, token_budget: int | None) -> tuple[int, int]:
    """(real tokens, token positions computed) for one text group, padded as one block or length-aware."""
    lengths = attention_mask.sum(dim=1)
    if token_budget is None:
        return int(lengths.sum()), int(attention_mask.numel())
    computed = sum(len(rows) * max(int(lengths[rows[0]]), 1) for rows in length_chunks(lengths, token_budget))
    return int(lengths.sum()), computed
