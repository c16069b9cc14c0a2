"""GradCache: InfoNCE over a large batch in bounded activation memory.

Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup".
1. Embed every group (queries, positives, negatives) in chunks of `mini_batch_size` under
   no_grad, recording the RNG state before each chunk.
2. Compute the wrapped loss on detached embeddings (cross-worker gather included) and take
   its gradient wrt each embedding.
3. Per chunk: restore its RNG state (same dropout masks), re-encode with grad and
   back-propagate `(emb * cached_grad).sum()`. Parameter gradients equal those of the plain
   loss computed on the whole batch in one graph.

The chunks are formed by length: each group's rows are sorted longest first before they are cut,
and each chunk is trimmed to its own longest text, so a chunk of short texts no longer computes
the group's longest padding. The loss sees the embeddings back in the batch's order, so neither
it nor the gradients change (up to float rounding); only the padded positions go.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from rtrain.data.batch import N_HASH, NEGATIVE, P_HASH, TEXT_GROUPS
from rtrain.losses.base_anchor import BaseAnchorLoss
from rtrain.losses.infonce import InfoNCELoss
from rtrain.losses.protocol import Autocast, Backward, Encode
from rtrain.models.length_aware import inverse_permutation


def chunked_backward_calls(group_rows: Iterable[int], mini_batch_size: int) -> int:
    """Backward calls of one GradCache micro-batch: sum over the text groups of ceil(rows / mini_batch_size)."""
    return sum(-(-rows // mini_batch_size) for rows in group_rows)


@dataclass(frozen=True)
class _RngState:
    """CPU RNG state plus, for a CUDA input, that device's RNG state."""

    cpu: Tensor
    cuda: Tensor | None
    device: torch.device

    @classmethod
    def capture(cls, device: torch.device) -> _RngState:
        cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return cls(cpu=torch.get_rng_state(), cuda=cuda, device=device)

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Run the body with this RNG state; the global RNG state is left untouched."""
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def _default_backward(surrogate: Tensor) -> None:
    surrogate.backward()


class CachedInfoNCELoss:
    """GradCache wrapper around an `InfoNCELoss`.

    Args:
        loss: the wrapped loss (its temperature, symmetry, gather and masking apply).
        mini_batch_size: rows encoded per forward/backward chunk; must be >= 1.
        by_length: form the chunks from length-sorted rows, each trimmed to its longest text (the default);
            False cuts the batch in its own order, every chunk padded to its group's longest (what
            benchmarks compare against).
    """

    def __init__(self, loss: InfoNCELoss, mini_batch_size: int, by_length: bool = True) -> None:
        if not isinstance(loss, InfoNCELoss):
            raise ValueError(
                f"loss must be an InfoNCELoss, got {type(loss).__name__}; wrap e.g. InfoNCELoss(temperature=0.05)."
            )
        if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int):
            raise ValueError(f"mini_batch_size must be an int >= 1, got {mini_batch_size!r}; use e.g. 32.")
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}; use e.g. 32.")
        self.loss = loss
        self.mini_batch_size = mini_batch_size
        self.by_length = by_length

    def num_backward_calls(self, batch: Mapping[str, Tensor]) -> int:
        """Number of `backward` calls `forward_backward` makes for `batch`: `chunked_backward_calls` of its
        query, positive and negative rows (a missing or empty negative group counts 0)."""
        return chunked_backward_calls((ids.shape[0] for ids, _ in self._groups(batch)), self.mini_batch_size)

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
        """Compute the loss and accumulate parameter gradients; return the detached loss.

        `encode(input_ids, attention_mask)` returns (N, dim) L2-normalised embeddings.
        `batch` holds the keys of `rtrain.data.batch`: queries and positives (B rows), optional
        negatives (B*k rows), optional P_HASH (B,) and N_HASH (B*k,).
        `backward(surrogate)` is called once per chunk, `self.num_backward_calls(batch)`
        times per step, in the order queries, positives, negatives (default:
        `surrogate.backward()`). Gradients accumulate; the caller zeroes and steps.
        With `anchor`, `encode_base(input_ids, attention_mask)` embeds each chunk with the frozen
        base model and the returned loss is InfoNCE + the anchor term over every row; the term is
        per row, so it joins the cached gradient of step 2 and costs one base forward per chunk.
        Everything, the chunks' backward calls included, runs under `autocast()`.
        """
        if (anchor is None) != (encode_base is None):
            raise ValueError("pass anchor and encode_base together (or neither)")
        with autocast():
            return self._forward_backward(
                encode, batch, _default_backward if backward is None else backward, anchor, encode_base
            )

    def _forward_backward(
        self,
        encode: Encode,
        batch: Mapping[str, Tensor],
        backward: Backward,
        anchor: BaseAnchorLoss | None,
        encode_base: Encode | None,
    ) -> Tensor:
        groups = [_by_length(ids, mask, self.by_length) for ids, mask in self._groups(batch)]

        # Step 1: embed without a graph, recording the RNG state of every chunk.
        reps: list[Tensor] = []  # per group (rows, dim), in sorted order: the leaves the cached gradient is taken on
        base_reps: list[Tensor] = []
        states: list[list[_RngState]] = []
        for ids, mask, _ in groups:
            chunk_reps, chunk_states = [], []
            for ids_c, mask_c in self._chunks(ids, mask):
                if encode_base is not None:
                    base_reps.append(encode_base(ids_c, mask_c))  # (chunk, dim), dropout off: no RNG used
                chunk_states.append(_RngState.capture(ids_c.device))
                with torch.no_grad():
                    chunk_reps.append(encode(ids_c, mask_c))  # (chunk, dim)
            reps.append(torch.cat(chunk_reps, dim=0).detach().requires_grad_())  # (rows, dim)
            states.append(chunk_states)

        # Step 2: loss on the cached embeddings (back in batch order) and its gradient wrt each of them.
        ordered = [rep[inverse] for rep, (_, _, inverse) in zip(reps, groups, strict=True)]  # (rows, dim) each
        query = ordered[0]  # (batch, dim)
        positive = ordered[1]  # (batch, dim)
        negatives = ordered[2] if len(ordered) > 2 else None  # (batch * k, dim)
        n_hash = batch.get(N_HASH) if negatives is not None else None
        loss = self.loss(query, positive, negatives, batch.get(P_HASH), n_hash)  # ()
        if anchor is not None:
            loss = loss + anchor(torch.cat(reps, dim=0), torch.cat(base_reps, dim=0))  # rows of every group
        grads = torch.autograd.grad(loss, reps)  # per group (rows, dim), sorted order

        # Step 3: replay each chunk with grad and push the cached gradient through it.
        for (ids, mask, _), grad, chunk_states in zip(groups, grads, states, strict=True):
            offset = 0
            for (ids_c, mask_c), state in zip(self._chunks(ids, mask), chunk_states, strict=True):
                grad_c = grad[offset : offset + ids_c.shape[0]]  # (chunk, dim)
                offset += ids_c.shape[0]
                with state.replay():
                    emb = encode(ids_c, mask_c)  # (chunk, dim)
                surrogate = (emb * grad_c).sum()  # ()
                backward(surrogate)
        return loss.detach()

    def _groups(self, batch: Mapping[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
        """(input_ids, attention_mask) for queries, positives and non-empty negatives."""
        groups = []
        for group in TEXT_GROUPS:
            if group.ids not in batch or batch[group.ids] is None:
                if group is NEGATIVE:
                    continue
                raise ValueError(
                    f"batch is missing {group.ids!r}; got keys {sorted(batch)}. "
                    "Pass q_/p_ input_ids and attention_mask (n_ optional)."
                )
            if group.mask not in batch:
                raise ValueError(f"batch has {group.ids!r} but no {group.mask!r}; pass both.")
            ids, mask = batch[group.ids], batch[group.mask]
            if ids.shape[0] == 0 and group is NEGATIVE:
                continue
            groups.append((ids, mask))
        return groups

    def _chunks(self, ids: Tensor, mask: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        """Consecutive chunks of `mini_batch_size` rows; by length, each cut to its longest text (its first row)."""
        lengths = mask.sum(dim=1)  # (rows,)
        for start in range(0, ids.shape[0], self.mini_batch_size):
            stop = start + self.mini_batch_size
            width = max(int(lengths[start]), 1) if self.by_length else ids.shape[1]
            yield ids[start:stop, :width], mask[start:stop, :width]


def _by_length(ids: Tensor, mask: Tensor, sort: bool) -> tuple[Tensor, Tensor, Tensor]:
    """(ids, mask) with rows sorted longest first (when `sort`), and the index putting them back in batch order."""
    if sort:
        order = torch.argsort(mask.sum(dim=1), descending=True, stable=True)  # (rows,)
    else:
        order = torch.arange(ids.shape[0], device=ids.device)  # (rows,)
    return ids[order], mask[order], inverse_permutation(order)
