"""GradCache: InfoNCE over a large batch in bounded activation memory.

Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup".
1. Embed every group (queries, positives, negatives) in chunks of `mini_batch_size` under
   no_grad, recording the RNG state before each chunk.
2. Compute the wrapped loss on detached embeddings (cross-worker gather included) and take
   its gradient wrt each embedding.
3. Per chunk: restore its RNG state (same dropout masks), re-encode with grad and
   back-propagate `(emb * cached_grad).sum()`. Parameter gradients equal those of the plain
   loss computed on the whole batch in one graph.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from rtrain.losses.base_anchor import BaseAnchorLoss
from rtrain.losses.infonce import InfoNCELoss

# (ids key, mask key) per group, in the order the loss takes them.
_GROUPS: tuple[tuple[str, str], ...] = (
    ("q_input_ids", "q_attention_mask"),
    ("p_input_ids", "p_attention_mask"),
    ("n_input_ids", "n_attention_mask"),
)


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
    """

    def __init__(self, loss: InfoNCELoss, mini_batch_size: int) -> None:
        if not isinstance(loss, InfoNCELoss):
            raise ValueError(
                f"loss must be an InfoNCELoss, got {type(loss).__name__}; "
                "wrap e.g. InfoNCELoss(temperature=0.05)."
            )
        if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int):
            raise ValueError(
                f"mini_batch_size must be an int >= 1, got {mini_batch_size!r}; use e.g. 32."
            )
        if mini_batch_size < 1:
            raise ValueError(
                f"mini_batch_size must be >= 1, got {mini_batch_size}; use e.g. 32."
            )
        self.loss = loss
        self.mini_batch_size = mini_batch_size

    def num_backward_calls(self, batch: dict[str, Tensor]) -> int:
        """Number of `backward` calls `forward_backward` makes for `batch`.

        Sum over the query, positive and negative groups of ceil(rows / mini_batch_size);
        a missing or empty negative group counts 0.
        """
        return sum(
            -(-ids.shape[0] // self.mini_batch_size) for ids, _ in self._groups(batch)
        )

    def forward_backward(
        self,
        encode: Callable[[Tensor, Tensor], Tensor],
        batch: dict[str, Tensor],
        backward: Callable[[Tensor], None] | None = None,
        anchor: BaseAnchorLoss | None = None,
        encode_base: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> Tensor:
        """Compute the loss and accumulate parameter gradients; return the detached loss.

        `encode(input_ids, attention_mask)` returns (N, dim) L2-normalised embeddings.
        `batch` keys: q_input_ids, q_attention_mask (B, Lq); p_input_ids, p_attention_mask
        (B, Ld); optional n_input_ids, n_attention_mask (B*k, Ld); optional p_hash (B,) and
        n_hash (B*k,).
        `backward(surrogate)` is called once per chunk, `self.num_backward_calls(batch)`
        times per step, in the order queries, positives, negatives (default:
        `surrogate.backward()`). Gradients accumulate; the caller zeroes and steps.
        With `anchor`, `encode_base(input_ids, attention_mask)` embeds each chunk with the frozen
        base model and the returned loss is InfoNCE + the anchor term over every row; the term is
        per row, so it joins the cached gradient of step 2 and costs one base forward per chunk.
        """
        backward = _default_backward if backward is None else backward
        if (anchor is None) != (encode_base is None):
            raise ValueError("pass anchor and encode_base together (or neither)")
        groups = self._groups(batch)

        # Step 1: embed without a graph, recording the RNG state of every chunk.
        reps: list[Tensor] = []
        base_reps: list[Tensor] = []
        states: list[list[_RngState]] = []
        for ids, mask in groups:
            chunk_reps, chunk_states = [], []
            for ids_c, mask_c in self._chunks(ids, mask):
                if encode_base is not None:
                    base_reps.append(encode_base(ids_c, mask_c))  # (chunk, dim), dropout off: no RNG used
                chunk_states.append(_RngState.capture(ids_c.device))
                with torch.no_grad():
                    chunk_reps.append(encode(ids_c, mask_c))  # (chunk, dim)
            reps.append(torch.cat(chunk_reps, dim=0).detach().requires_grad_())  # (rows, dim)
            states.append(chunk_states)

        # Step 2: loss on the cached embeddings and its gradient wrt each of them.
        query = reps[0]  # (batch, dim)
        positive = reps[1]  # (batch, dim)
        negatives = reps[2] if len(reps) > 2 else None  # (batch * k, dim)
        n_hash = batch.get("n_hash") if negatives is not None else None
        loss = self.loss(query, positive, negatives, batch.get("p_hash"), n_hash)  # ()
        if anchor is not None:
            loss = loss + anchor(torch.cat(reps, dim=0), torch.cat(base_reps, dim=0))  # rows of every group
        grads = torch.autograd.grad(loss, reps)  # per group (rows, dim)

        # Step 3: replay each chunk with grad and push the cached gradient through it.
        for (ids, mask), grad, chunk_states in zip(groups, grads, states):
            offset = 0
            for (ids_c, mask_c), state in zip(self._chunks(ids, mask), chunk_states):
                grad_c = grad[offset : offset + ids_c.shape[0]]  # (chunk, dim)
                offset += ids_c.shape[0]
                with state.replay():
                    emb = encode(ids_c, mask_c)  # (chunk, dim)
                surrogate = (emb * grad_c).sum()  # ()
                backward(surrogate)
        return loss.detach()

    def _groups(self, batch: dict[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
        """(input_ids, attention_mask) for queries, positives and non-empty negatives."""
        groups = []
        for ids_key, mask_key in _GROUPS:
            if ids_key not in batch or batch[ids_key] is None:
                if ids_key.startswith("n_"):
                    continue
                raise ValueError(
                    f"batch is missing {ids_key!r}; got keys {sorted(batch)}. "
                    "Pass q_/p_ input_ids and attention_mask (n_ optional)."
                )
            if mask_key not in batch:
                raise ValueError(f"batch has {ids_key!r} but no {mask_key!r}; pass both.")
            ids, mask = batch[ids_key], batch[mask_key]
            if ids.shape[0] == 0 and ids_key.startswith("n_"):
                continue
            groups.append((ids, mask))
        return groups

    def _chunks(self, ids: Tensor, mask: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        for start in range(0, ids.shape[0], self.mini_batch_size):
            stop = start + self.mini_batch_size
            yield ids[start:stop], mask[start:stop]
