"""Unpadded encoding (#14): the padded model's embeddings, losses and gradients, no padding in linear layers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rtrain.config.schema import LoraConfig, LossConfig, ModelConfig
from rtrain.data.schema import rows_to_table
from rtrain.data.tokenize import PairCollator, PairTokenizer
from rtrain.losses.registry import build_loss
from rtrain.models.encoder import Encoder, build_encoder
from rtrain.models.unpadded import unpadded_hidden
from rtrain.train.step import build_anchor, train_step

from tiny import FakeEngine, make_tiny_causal_lm, make_tiny_model, pair_rows

WORLD = 2
LOSS = {"negatives_per_query": 1, "mini_batch_size": 5, "base_anchor": 0.5}


def _encoder(path: Path, unpadded: bool, lora: bool = True, checkpointing: bool = False) -> tuple[Encoder, object]:
    """A 2-layer encoder, dropout off (both paths compute one function), LoRA B off zero (a real anchor gradient)."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        name_or_path=str(path), query_max_length=24, passage_max_length=40, unpadded=unpadded,
        gradient_checkpointing=checkpointing,
    )  # fmt: skip
    encoder, tokenizer = build_encoder(cfg, LoraConfig(r=4, alpha=8, dropout=0.0, enabled=lora))
    encoder.eval()
    for name, param in encoder.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    return encoder, tokenizer


def _batch(cfg: ModelConfig, pad_id: int, rows: int = 12) -> dict[str, torch.Tensor]:
    """Pairs whose positives run from a few tokens to the length limit: much padding in every group."""
    pairs = pair_rows(rows, negatives=1, seed=5)
    for i, row in enumerate(pairs):
        row["positive"] = " ".join([row["positive"]] * (1 + i % 4))
    return PairCollator(pad_id, 1)(PairTokenizer(cfg, 1)(rows_to_table(pairs)).to_pydict())


def _step(encoder: Encoder, batch: dict[str, torch.Tensor], cached: bool, budget: int | None = None):
    cfg = LossConfig(cached=cached, **LOSS)
    encoder.zero_grad()
    out = train_step(FakeEngine(encoder), build_loss(cfg), batch, build_anchor(cfg), budget)
    return out.loss, [p.grad.clone() for p in encoder.parameters() if p.requires_grad]


@pytest.mark.parametrize("family", ["bert", "xlmr"])
def test_token_states_equal_the_padded_models_and_linear_layers_see_only_real_tokens(
    tmp_path: Path, family: str
) -> None:
    """At every real token the states equal Hugging Face's padded forward (XLM-R's position ids start after the
    padding index, BERT's at 0); padded positions are zeros; every query projection gets (real tokens, dim)."""
    encoder, tokenizer = _encoder(make_tiny_model(tmp_path / family, family=family), unpadded=True)
    words = " ".join(row["positive"] for row in pair_rows(4)).split()
    texts = [" ".join(words[: 1 + i]) for i in range(8)] + [" ".join(words)]  # 1 to 8 words, and one long text
    enc = tokenizer(texts, padding=True, truncation=True, max_length=40, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert mask.sum() < 0.6 * mask.numel()  # the batch really has padding to skip
    rows_seen: list[int] = []
    hooks = [
        m.register_forward_hook(lambda _m, args, _out: rows_seen.append(args[0].shape[0]))
        for name, m in encoder.named_modules()
        if name.endswith("attention.self.query.base_layer")
    ]
    with torch.no_grad():
        got = unpadded_hidden(encoder.backbone, ids, mask)  # (batch, seq, dim)
        for hook in hooks:
            hook.remove()
        want = encoder.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
    assert rows_seen == [int(mask.sum())] * 2  # two layers, packed real tokens only
    real = mask.bool()
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-4)
    assert got[~real].abs().max() == 0
    assert not torch.allclose(got[real], want.flip(0)[real.flip(0)], atol=1e-3)  # the check can fail


@pytest.mark.parametrize("cached", [False, True])
def test_unpadded_step_equals_the_padded_step(tiny_model: Path, cached: bool) -> None:
    """Loss and LoRA gradients (InfoNCE + base anchor, plain and GradCache, alone and with length-aware chunks)
    equal the padded step's to 1e-5; so do full fine-tuning's gradients under activation checkpointing."""
    padded, tokenizer = _encoder(tiny_model, unpadded=False)
    unpadded, _ = _encoder(tiny_model, unpadded=True)
    batch = _batch(padded.cfg, tokenizer.pad_token_id)
    want_loss, want = _step(padded, batch, cached)
    for budget in (None, 64):
        got_loss, got = _step(unpadded, batch, cached, budget)
        assert got_loss == pytest.approx(want_loss, abs=1e-5)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
    full, _ = _encoder(tiny_model, unpadded=False, lora=False)
    full_unpadded, _ = _encoder(tiny_model, unpadded=True, lora=False, checkpointing=True)
    full_unpadded.train()  # checkpointing recomputes in training mode only; dropout stays off
    for module in full_unpadded.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    full_cfg = LossConfig(cached=cached, **(LOSS | {"base_anchor": 0.0}))
    grads = []
    for encoder in (full, full_unpadded):
        encoder.zero_grad()
        train_step(FakeEngine(encoder), build_loss(full_cfg), batch)
        grads.append([p.grad for p in encoder.parameters() if p.requires_grad])
    for g, w in zip(*grads, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_dropout_stays_on_in_training(tiny_model: Path) -> None:
    """In train mode the attention and hidden dropouts are drawn: two passes differ, as in the padded model."""
    encoder, tokenizer = _encoder(tiny_model, unpadded=True)
    encoder.train()
    batch = _batch(encoder.cfg, tokenizer.pad_token_id)
    ids, mask = batch["q_input_ids"], batch["q_attention_mask"]
    assert not torch.allclose(encoder(ids, mask), encoder(ids, mask))


def _two_rank_worker(rank: int, world: int, init_file: str, model: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        encoder, tokenizer = _encoder(Path(model), unpadded=True)
        batch = _batch(encoder.cfg, tokenizer.pad_token_id)
        rows = len(batch["q_input_ids"]) // world
        local = {k: v[rank * rows : (rank + 1) * rows] for k, v in batch.items()}
        torch.save(_step(encoder, local, cached=True), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_unpadded_equal_one_padded_process(tiny_model: Path, tmp_path: Path) -> None:
    """Two gloo ranks, each with half the batch, unpadded under GradCache (the cross-rank gather included):
    the mean of their losses and gradients equals one padded process on the whole batch."""
    mp.spawn(_two_rank_worker, args=(WORLD, str(tmp_path / "init"), str(tiny_model), str(tmp_path)), nprocs=WORLD)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    padded, tokenizer = _encoder(tiny_model, unpadded=False)
    want_loss, want = _step(padded, _batch(padded.cfg, tokenizer.pad_token_id), cached=False)
    assert sum(loss for loss, _ in ranks) / WORLD == pytest.approx(want_loss, abs=1e-5)
    for i, w in enumerate(want):
        torch.testing.assert_close(sum(grads[i] for _, grads in ranks) / WORLD, w, atol=1e-5, rtol=1e-4)


def test_a_decoder_is_refused_with_the_fix(tmp_path: Path) -> None:
    lm = make_tiny_causal_lm(tmp_path / "lm", ["a tiny corpus for a tiny model"] * 4)
    with pytest.raises(ValueError, match=r"model.unpadded: LlamaModel has no embeddings.*set model.unpadded=false"):
        build_encoder(ModelConfig(name_or_path=str(lm), pooling="last_token", unpadded=True), LoraConfig())
