"""The `loss.kind` registry: kinds match the config, one training-loss convention, backward-call counts, model card."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import get_args

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from rtrain.checkpoint import STATE_FILE
from rtrain.config import ConfigError, resolve_job
from rtrain.config.schema import JobConfig, LossConfig, LossKindName
from rtrain.data.batch import N_HASH, NEGATIVE, P_HASH, POSITIVE, QUERY
from rtrain.export import model_card
from rtrain.losses import CachedInfoNCELoss, PlainLoss, TrainingLoss
from rtrain.losses.registry import LOSSES, backward_calls_per_batch, build_loss, loss_kind
from rtrain.train.step import train_step

BASE = {"model": {"name_or_path": "m"}, "data": {"train_files": ["x"]}}
VOCAB, DIM = 40, 8


def _job(**loss: object) -> JobConfig:
    return resolve_job({**BASE, "loss": dict(loss), "train": {"batch_size_per_worker": 8}})


def test_registry_kinds_equal_the_config_literal() -> None:
    assert set(LOSSES) == set(get_args(LossKindName)) == set(get_args(LossConfig.model_fields["kind"].annotation))
    assert LossConfig().kind == "infonce"


def test_unknown_kind_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"loss\.kind = 'triplet'.*'infonce'"):
        resolve_job({**BASE, "loss": {"kind": "triplet"}})
    with pytest.raises(ValueError, match="unknown loss.kind 'triplet'; known kinds: infonce"):
        loss_kind("triplet")


def test_kind_and_cached_pick_the_training_form() -> None:
    plain, cached = build_loss(LossConfig()), build_loss(LossConfig(cached=True, mini_batch_size=4))
    assert isinstance(plain, PlainLoss) and isinstance(cached, CachedInfoNCELoss)
    assert cached.mini_batch_size == 4 and cached.loss.temperature == plain.loss.temperature
    assert isinstance(plain, TrainingLoss) and isinstance(cached, TrainingLoss)


class _Encoder(torch.nn.Module):
    """Mean-pooled bag of tokens -> linear -> L2 normalisation; no dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.bag = torch.nn.EmbeddingBag(VOCAB, 16, mode="mean")
        self.proj = torch.nn.Linear(16, DIM)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        pooled = self.bag(input_ids)  # (n, 16); every mask is all ones
        return F.normalize(self.proj(pooled), dim=-1)  # (n, dim)


def _batch(b: int, k: int, seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {P_HASH: torch.arange(b)}
    groups = [(QUERY, b), (POSITIVE, b)] + ([(NEGATIVE, b * k)] if k else [])
    for group, rows in groups:
        batch[group.ids] = torch.randint(1, VOCAB, (rows, 6), generator=g)  # (rows, seq)
        batch[group.mask] = torch.ones(rows, 6, dtype=torch.long)  # (rows, seq)
    if k:
        batch[N_HASH] = torch.arange(1000, 1000 + b * k)
    return batch


class _CountingEngine:
    """The slice of `Engine` the step uses; counts backward calls and steps every `calls_per_step` of them."""

    def __init__(self, module: torch.nn.Module, calls_per_step: int) -> None:
        self.module = self.raw = module
        self.device = torch.device("cpu")
        self.calls, self.calls_per_step = 0, calls_per_step

    def backward(self, loss: Tensor) -> None:
        loss.backward()
        self.calls += 1

    def step(self) -> bool:
        return self.calls % self.calls_per_step == 0

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


CASES = {
    "plain": {"negatives_per_query": 1},
    "plain_k0": {"negatives_per_query": 0},
    "cached": {"negatives_per_query": 2, "cached": True, "mini_batch_size": 3},
    "cached_k0": {"negatives_per_query": 0, "cached": True, "mini_batch_size": 3},
    "cached_one_chunk": {"negatives_per_query": 1, "cached": True, "mini_batch_size": 8},
}


@pytest.mark.parametrize("case", CASES)
def test_registry_backward_calls_equal_the_engine_calls(case: str) -> None:
    cfg = _job(**CASES[case])
    expected = backward_calls_per_batch(cfg)
    if cfg.loss.cached:  # 8 queries and 8 positives in chunks of m, 8k negatives in chunks of m
        m, k = cfg.loss.mini_batch_size, cfg.loss.negatives_per_query
        assert expected == 2 * -(-8 // m) + -(-8 * k // m)
    else:
        assert expected == 1
    torch.manual_seed(0)
    engine = _CountingEngine(_Encoder(), expected)
    batch = _batch(8, cfg.loss.negatives_per_query)
    out = train_step(engine, build_loss(cfg.loss), batch)
    assert engine.calls == expected == build_loss(cfg.loss).num_backward_calls(batch)
    assert out.stepped  # the step lands on the micro-batch's last backward call


def test_train_step_plain_and_cached_give_the_same_loss_and_gradients() -> None:
    torch.manual_seed(0)
    encoder = _Encoder()  # fp32: the plain form computes the loss on fp32 embeddings
    batch = _batch(8, 2, seed=3)
    results = []
    for loss_cfg in (
        LossConfig(negatives_per_query=2),
        LossConfig(negatives_per_query=2, cached=True, mini_batch_size=3),
    ):
        encoder.zero_grad()
        out = train_step(_CountingEngine(encoder, 10**6), build_loss(loss_cfg), batch)
        results.append((out.loss, [p.grad.clone() for p in encoder.parameters()]))
    (plain_loss, plain_grads), (cached_loss, cached_grads) = results
    assert cached_loss == pytest.approx(plain_loss, abs=1e-5)
    for got, want in zip(cached_grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("anchor", [0.0, 0.5])
def test_model_card_names_the_loss_from_the_registry(tmp_path: Path, anchor: float) -> None:
    checkpoint = tmp_path / "run" / "checkpoint_0000001"
    checkpoint.mkdir(parents=True)
    (checkpoint / STATE_FILE).write_text(json.dumps({"step": 1, "batches_done": 1}))
    card = model_card(_job(base_anchor=anchor), checkpoint)
    name = loss_kind("infonce").display_name
    want = f"({name} + base anchor (weight 0.5); temperature" if anchor else f"({name}; temperature"
    assert want in card
