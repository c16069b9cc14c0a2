"""Tests for rtrain.losses: InfoNCE vs a loop reference, masking, 2-process gather, GradCache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import Tensor

from rtrain.losses import CachedInfoNCELoss, InfoNCELoss
from rtrain.models.length_aware import length_aware

DIM = 8


# ---------------------------------------------------------------- reference


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum()


def _nll(label_logit: Tensor, logits: list[Tensor]) -> Tensor:
    """-log softmax(label) by hand: log(sum exp(logits)) - label_logit."""
    return torch.log(sum(torch.exp(x) for x in logits)) - label_logit


def reference_loss(
    q: Tensor,
    p: Tensor,
    n: Tensor | None,
    temperature: float,
    symmetric: bool,
    pos_hash: list[int] | None = None,
    neg_hash: list[int] | None = None,
) -> Tensor:
    """Naive single-process InfoNCE with explicit loops; masked candidates are skipped."""
    b = q.shape[0]
    cands = [p[j] for j in range(b)] + ([n[j] for j in range(n.shape[0])] if n is not None else [])
    cand_hash = None
    if pos_hash is not None:
        cand_hash = list(pos_hash) + (list(neg_hash) if n is not None else [])
    total = q.new_zeros(())
    for i in range(b):
        logits = []
        for j, c in enumerate(cands):
            if cand_hash is not None and j != i and cand_hash[j] == pos_hash[i]:
                continue
            logits.append(_dot(q[i], c) / temperature)
        total = total + _nll(_dot(q[i], p[i]) / temperature, logits)
    loss = total / b
    if not symmetric:
        return loss
    total = q.new_zeros(())
    for i in range(b):
        logits = []
        for j in range(b):
            if pos_hash is not None and j != i and pos_hash[j] == pos_hash[i]:
                continue
            logits.append(_dot(p[i], q[j]) / temperature)
        total = total + _nll(_dot(p[i], q[i]) / temperature, logits)
    return (loss + total / b) / 2


def _unit(*shape: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def _loss_and_grads(fn, q: Tensor, p: Tensor, n: Tensor | None):
    leaves = [t.clone().requires_grad_() for t in (q, p) + ((n,) if n is not None else ())]
    loss = fn(*leaves, *([None] if n is None else []))
    grads = torch.autograd.grad(loss, leaves)
    return loss.detach(), grads


def _close(a: Tensor, b: Tensor, tol: float) -> None:
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


# ---------------------------------------------------------------- InfoNCE vs reference


@pytest.mark.parametrize("k", [0, 2])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("temperature", [0.05, 0.7])
def test_infonce_matches_loop_reference(k: int, symmetric: bool, temperature: float) -> None:
    b = 5
    q, p = _unit(b, DIM, seed=1), _unit(b, DIM, seed=2)
    n = _unit(b * k, DIM, seed=3) if k else None
    module = InfoNCELoss(temperature=temperature, symmetric=symmetric)
    loss, grads = _loss_and_grads(lambda q, p, n: module(q, p, n), q, p, n)
    ref, ref_grads = _loss_and_grads(lambda q, p, n: reference_loss(q, p, n, temperature, symmetric), q, p, n)
    _close(loss, ref, 1e-6)
    for g, rg in zip(grads, ref_grads):
        _close(g, rg, 1e-6)


def test_empty_negatives_equal_none() -> None:
    q, p = _unit(4, DIM, seed=1), _unit(4, DIM, seed=2)
    module = InfoNCELoss()
    _close(module(q, p, q.new_zeros(0, DIM)), module(q, p, None), 1e-12)


# ---------------------------------------------------------------- false-negative masking


@pytest.mark.parametrize("symmetric", [False, True])
def test_false_negative_masking(symmetric: bool) -> None:
    b, k = 4, 2
    p, n = _unit(b, DIM, seed=5), _unit(b * k, DIM, seed=6)
    p[2] = p[0]  # rows 0 and 2 share the same positive text
    n[5] = p[1]  # a hard negative of row 2 is row 1's positive text
    q = F.normalize(p + 0.3 * _unit(b, DIM, seed=4), dim=-1)  # queries near their positives
    pos_hash = [100, 101, 100, 103]
    neg_hash = [200, 201, 202, 203, 204, 101, 206, 207]
    ph, nh = torch.tensor(pos_hash), torch.tensor(neg_hash)
    t = 0.05

    masked = InfoNCELoss(temperature=t, symmetric=symmetric)
    loss, grads = _loss_and_grads(lambda q, p, n: masked(q, p, n, ph, nh), q, p, n)
    ref, ref_grads = _loss_and_grads(lambda q, p, n: reference_loss(q, p, n, t, symmetric, pos_hash, neg_hash), q, p, n)
    _close(loss, ref, 1e-6)
    for g, rg in zip(grads, ref_grads):
        _close(g, rg, 1e-6)

    unmasked = InfoNCELoss(temperature=t, symmetric=symmetric, mask_false_negatives=False)
    plain = unmasked(q, p, n, ph, nh)
    _close(plain, reference_loss(q, p, n, t, symmetric), 1e-6)
    assert abs(plain.item() - loss.item()) > 1e-3


def test_hashes_without_negatives_and_neg_hash_optional() -> None:
    b = 3
    q, p, n = _unit(b, DIM, seed=7), _unit(b, DIM, seed=8), _unit(b * 2, DIM, seed=9)
    p[1] = p[0]
    ph = torch.tensor([1, 1, 2])
    module = InfoNCELoss()
    _close(module(q, p, None, ph), reference_loss(q, p, None, 0.05, False, [1, 1, 2]), 1e-6)
    # Without neg_hash only the positives are masked: negatives get hashes that never match.
    ref = reference_loss(q, p, n, 0.05, False, [1, 1, 2], [-1] * (b * 2))
    _close(module(q, p, n, ph), ref, 1e-6)


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("temperature", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_temperature(temperature: float) -> None:
    with pytest.raises(ValueError, match=f"got {temperature!r}"):
        InfoNCELoss(temperature=temperature)


@pytest.mark.parametrize("size", [0, -3])
def test_bad_mini_batch_size(size: int) -> None:
    with pytest.raises(ValueError, match=f"got {size}"):
        CachedInfoNCELoss(InfoNCELoss(), mini_batch_size=size)


def test_bad_shapes() -> None:
    q = _unit(4, DIM, seed=1)
    with pytest.raises(ValueError, match=r"\(3, 8\)"):
        InfoNCELoss()(q, q[:3])
    with pytest.raises(ValueError, match="negatives"):
        InfoNCELoss()(q, q, q[:, :4])
    with pytest.raises(ValueError, match="pos_hash"):
        InfoNCELoss()(q, q, None, torch.zeros(3, dtype=torch.int64))


# ---------------------------------------------------------------- tiny encoder for GradCache

VOCAB = 40


class TinyEncoder(torch.nn.Module):
    """Mean-pooled bag of tokens -> dropout -> linear -> L2 normalisation."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.bag = torch.nn.EmbeddingBag(VOCAB, 16, mode="sum")
        self.drop = torch.nn.Dropout(dropout)
        self.proj = torch.nn.Linear(16, DIM)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        w = attention_mask.to(self.proj.weight.dtype)  # (n, len)
        pooled = self.bag(input_ids, per_sample_weights=w) / w.sum(1, keepdim=True)  # (n, 16)
        return F.normalize(self.proj(self.drop(pooled)), dim=-1)  # (n, dim)


def _tokens(n: int, length: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    ids = torch.randint(1, VOCAB, (n, length), generator=g)
    lens = torch.randint(1, length + 1, (n,), generator=g)
    mask = (torch.arange(length)[None, :] < lens[:, None]).long()
    return ids * mask, mask


def _token_batch(b: int, k: int, seed: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {}
    batch["q_input_ids"], batch["q_attention_mask"] = _tokens(b, 5, g)
    batch["p_input_ids"], batch["p_attention_mask"] = _tokens(b, 7, g)
    if k:
        batch["n_input_ids"], batch["n_attention_mask"] = _tokens(b * k, 7, g)
        batch["n_hash"] = torch.arange(1000, 1000 + b * k)
    batch["p_hash"] = torch.arange(b)
    # Row 1 repeats row 0's positive (same text, same hash).
    batch["p_input_ids"][1] = batch["p_input_ids"][0]
    batch["p_attention_mask"][1] = batch["p_attention_mask"][0]
    batch["p_hash"][1] = batch["p_hash"][0]
    return batch


def _slice_batch(batch: dict[str, Tensor], rank: int, world: int) -> dict[str, Tensor]:
    out = {}
    for key, t in batch.items():
        rows = t.shape[0] // world
        out[key] = t[rank * rows : (rank + 1) * rows]
    return out


def _plain_loss(loss: InfoNCELoss, encoder: TinyEncoder, batch: dict[str, Tensor], chunk: int | None) -> Tensor:
    """Encode every group with grad; with `chunk`, in GradCache's chunks (rows sorted longest first, so the
    dropout masks are drawn for the same rows in the same order), then back in batch order."""
    embs = []
    for prefix in ("q", "p", "n"):
        if f"{prefix}_input_ids" not in batch:
            continue
        ids, mask = batch[f"{prefix}_input_ids"], batch[f"{prefix}_attention_mask"]
        if chunk is None:
            embs.append(encoder(ids, mask))
            continue
        order = torch.argsort(mask.sum(dim=1), descending=True, stable=True)
        parts = [encoder(ids[order[s : s + chunk]], mask[order[s : s + chunk]]) for s in range(0, len(ids), chunk)]
        embs.append(torch.cat(parts)[torch.argsort(order)])
    n = embs[2] if len(embs) > 2 else None
    return loss(embs[0], embs[1], n, batch["p_hash"], batch.get("n_hash"))


def _param_grads(encoder: torch.nn.Module) -> list[Tensor]:
    return [p.grad.clone() for p in encoder.parameters()]


@pytest.mark.parametrize("k", [0, 2])
@pytest.mark.parametrize("symmetric", [False, True])
def test_cached_matches_plain(k: int, symmetric: bool) -> None:
    b, mbs = 8, 3
    torch.manual_seed(0)
    encoder = TinyEncoder(dropout=0.3).double()
    batch = _token_batch(b, k, seed=11)
    loss_fn = InfoNCELoss(temperature=0.05, symmetric=symmetric)

    # Dropout is live: two passes over the same input differ.
    ids, mask = batch["q_input_ids"], batch["q_attention_mask"]
    assert not torch.allclose(encoder(ids, mask), encoder(ids, mask))

    torch.manual_seed(123)
    encoder.zero_grad()
    plain = _plain_loss(loss_fn, encoder, batch, chunk=mbs)
    plain.backward()
    want = _param_grads(encoder)

    cached = CachedInfoNCELoss(loss_fn, mini_batch_size=mbs)
    calls = []

    def backward(surrogate: Tensor) -> None:
        calls.append(surrogate.item())
        surrogate.backward()

    torch.manual_seed(123)
    encoder.zero_grad()
    got_loss = cached.forward_backward(encoder, batch, backward=backward)
    got = _param_grads(encoder)

    assert not got_loss.requires_grad
    _close(got_loss, plain.detach(), 1e-10)
    for g, w in zip(got, want):
        _close(g, w, 1e-5)
    expected_calls = 3 + 3 + (math.ceil(b * k / mbs) if k else 0)
    assert len(calls) == cached.num_backward_calls(batch) == expected_calls


def test_cached_default_backward_and_big_chunk() -> None:
    torch.manual_seed(0)
    encoder = TinyEncoder(dropout=0.0).double()
    batch = _token_batch(6, 1, seed=12)
    loss_fn = InfoNCELoss(temperature=0.1)
    encoder.zero_grad()
    _plain_loss(loss_fn, encoder, batch, chunk=None).backward()
    want = _param_grads(encoder)
    encoder.zero_grad()
    cached = CachedInfoNCELoss(loss_fn, mini_batch_size=64)
    cached.forward_backward(encoder, batch)
    assert cached.num_backward_calls(batch) == 3
    for g, w in zip(_param_grads(encoder), want):
        _close(g, w, 1e-10)


def test_cached_chunks_are_cut_by_length_and_trimmed() -> None:
    """GradCache forms its mini-batches from length-sorted rows, each cut to its own longest text: fewer
    padded positions than chunks of the batch's order padded to the group's longest, the same loss."""
    torch.manual_seed(0)
    encoder = TinyEncoder(dropout=0.0).double()
    batch = _token_batch(12, 1, seed=13)
    loss_fn = InfoNCELoss(temperature=0.1)
    seen: list[Tensor] = []

    def encode(ids: Tensor, mask: Tensor) -> Tensor:
        seen.append(mask)
        return encoder(ids, mask)

    cached = CachedInfoNCELoss(loss_fn, mini_batch_size=4)
    got = cached.forward_backward(encode, batch)
    first_pass = seen[: len(seen) // 2]  # the no-grad pass; the replay repeats the same chunks
    assert [m.shape for m in first_pass] == [m.shape for m in seen[len(seen) // 2 :]]
    for mask in first_pass:
        lengths = mask.sum(dim=1)
        assert int(lengths.max()) == mask.shape[1] and torch.equal(lengths, lengths.sort(descending=True).values)
    computed = sum(m.numel() for m in first_pass)
    padded = sum(batch[f"{g}_attention_mask"].numel() for g in "qpn")
    assert computed < padded, (computed, padded)
    _close(got, _plain_loss(loss_fn, encoder, batch, chunk=None).detach(), 1e-10)
    seen.clear()
    in_order = CachedInfoNCELoss(loss_fn, mini_batch_size=4, by_length=False).forward_backward(encode, batch)
    assert sum(m.numel() for m in seen) == 2 * padded  # every chunk at its group's longest, both passes
    _close(in_order, got, 1e-10)


# ---------------------------------------------------------------- two processes

WORLD = 2
DIST_CONFIGS = {
    "plain": dict(kwargs=dict(temperature=0.05), k=0, hashes=False),
    "negatives": dict(kwargs=dict(temperature=0.05), k=2, hashes=False),
    "symmetric_masked": dict(kwargs=dict(temperature=0.1, symmetric=True), k=2, hashes=True),
}


def _global_embeddings(b: int, k: int):
    q, p, n = _unit(b, DIM, seed=21), _unit(b, DIM, seed=22), _unit(b * k, DIM, seed=23)
    # Cross-rank false negatives: row 3 (rank 1) shares row 0's (rank 0) positive, and a
    # negative on rank 1 is the positive of row 1 (rank 0).
    p[3] = p[0]
    pos_hash = torch.tensor([10, 11, 12, 10])
    neg_hash = torch.arange(100, 100 + b * k)
    if k:
        n[6] = p[1]
        neg_hash[6] = 11
    return q, p, (n if k else None), pos_hash, (neg_hash if k else None)


def _dist_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results: dict[str, object] = {}
        b = 4
        lb = b // world
        for name, cfg in DIST_CONFIGS.items():
            k = cfg["k"]
            q, p, n, ph, nh = _global_embeddings(b, k)
            local = [q[rank * lb : (rank + 1) * lb], p[rank * lb : (rank + 1) * lb]]
            if n is not None:
                local.append(n[rank * lb * k : (rank + 1) * lb * k])
            leaves = [t.clone().requires_grad_() for t in local]
            hashes = (None, None)
            if cfg["hashes"]:
                hashes = (ph[rank * lb : (rank + 1) * lb], nh[rank * lb * k : (rank + 1) * lb * k])
            neg = leaves[2] if n is not None else None
            loss = InfoNCELoss(**cfg["kwargs"])(leaves[0], leaves[1], neg, *hashes)
            loss.backward()
            results[name] = (loss.detach(), [t.grad for t in leaves])

        # GradCache across ranks: identical encoders, each rank half of the token batch.
        torch.manual_seed(0)
        encoder = TinyEncoder(dropout=0.0).double()
        batch = _slice_batch(_token_batch(8, 2, seed=31), rank, world)
        cached = CachedInfoNCELoss(InfoNCELoss(symmetric=True), mini_batch_size=3)
        cached_loss = cached.forward_backward(encoder, batch)
        results["cached"] = (cached_loss, _param_grads(encoder))
        encoder.zero_grad()  # the same, encoded length-aware (chunks of <= 6 token positions): the same gradients
        chunked_loss = cached.forward_backward(length_aware(encoder, 6), batch)
        results["cached_length_aware"] = (chunked_loss, _param_grads(encoder))

        # Unequal batch sizes across ranks: a clear ValueError on every rank, no hang.
        q = _unit(2 + rank, DIM, seed=41)
        try:
            InfoNCELoss()(q, q)
            results["unequal"] = ""
        except ValueError as err:
            results["unequal"] = str(err)
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_process_gather_matches_single_process(tmp_path: Path) -> None:
    mp.spawn(
        _dist_worker,
        args=(WORLD, str(tmp_path / "init"), str(tmp_path)),
        nprocs=WORLD,
        join=True,
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    b, lb = 4, 4 // WORLD

    for name, cfg in DIST_CONFIGS.items():
        k = cfg["k"]
        q, p, n, ph, nh = _global_embeddings(b, k)
        module = InfoNCELoss(**cfg["kwargs"])
        hashes = (ph, nh) if cfg["hashes"] else (None, None)
        want_loss, want_grads = _loss_and_grads(lambda q, p, n: module(q, p, n, *hashes), q, p, n)
        # (a) the single-process loss is the mean of the rank losses.
        _close(sum(r[name][0] for r in ranks) / WORLD, want_loss, 1e-6)
        # (b) the gather's backward sums over ranks, so each rank's local embeddings get
        #     W * d(global-mean loss)/d(embedding); averaging over ranks (DDP) undoes the W.
        for r, res in enumerate(ranks):
            rows = [slice(r * lb, (r + 1) * lb)] * 2 + [slice(r * lb * k, (r + 1) * lb * k)]
            for got, want, rs in zip(res[name][1], want_grads, rows):
                _close(got, WORLD * want[rs], 1e-6)

    for res in ranks:
        assert "[[2, 0], [3, 0]]" in res["unequal"], res["unequal"]

    # GradCache on two ranks + gradient averaging == plain loss on the whole batch.
    torch.manual_seed(0)
    encoder = TinyEncoder(dropout=0.0).double()
    batch = _token_batch(8, 2, seed=31)
    encoder.zero_grad()
    plain = _plain_loss(InfoNCELoss(symmetric=True), encoder, batch, chunk=None)
    plain.backward()
    for key in ("cached", "cached_length_aware"):
        _close(sum(r[key][0] for r in ranks) / WORLD, plain.detach(), 1e-6)
        for i, want in enumerate(_param_grads(encoder)):
            _close(sum(r[key][1][i] for r in ranks) / WORLD, want, 1e-6)
