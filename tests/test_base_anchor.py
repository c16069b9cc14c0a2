"""The do-no-harm guard: the base-anchor loss term (value, gradient, wiring into the training step, plain and
GradCache) and checkpoint selection against the base model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from rtrain.checkpoint import LOG_FILE, METRICS_FILE, STATE_FILE, best_checkpoint, selection
from rtrain.config import ConfigError, resolve_job
from rtrain.config.schema import LoraConfig, LossConfig, ModelConfig
from rtrain.data.schema import rows_to_table
from rtrain.data.tokenize import PairCollator, PairTokenizer
from rtrain.losses import BaseAnchorLoss, InfoNCELoss
from rtrain.losses.registry import build_loss
from rtrain.models.encoder import build_encoder
from rtrain.models.pooling import pool
from rtrain.train.step import train_step

from tiny import FakeEngine, pair_rows

WEIGHT = 0.7


def test_anchor_is_zero_on_the_base_and_pulls_toward_it() -> None:
    torch.manual_seed(0)
    base = F.normalize(torch.randn(6, 8), dim=-1)  # (n, dim)
    anchor = BaseAnchorLoss(WEIGHT)
    assert float(anchor(base.clone(), base)) == pytest.approx(0.0, abs=1e-7)
    emb = F.normalize(base + 0.5 * torch.randn(6, 8), dim=-1).requires_grad_()
    value = anchor(emb, base)
    assert anchor.last_value == pytest.approx(float(value.detach()))
    (grad,) = torch.autograd.grad(value, emb)
    moved = F.normalize(emb.detach() - 0.1 * grad, dim=-1)
    assert (moved * base).sum(-1).min() > (emb.detach() * base).sum(-1).min()  # a gradient step moves toward base
    with pytest.raises(ValueError, match="finite value > 0"):
        BaseAnchorLoss(0.0)
    with pytest.raises(ValueError, match="differ"):
        anchor(emb, base[:3])


def _independent_base(model_path: Path, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The base model's embeddings computed without rtrain's encoder or PEFT: (n, dim)."""
    model = AutoModel.from_pretrained(str(model_path)).eval()
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state  # (n, seq, dim)
    return F.normalize(pool(hidden, mask, "mean"), dim=-1)


@pytest.mark.parametrize("cached", [False, True])
def test_train_step_adds_the_anchor_gradient(tiny_model: Path, cached: bool) -> None:
    """The step's LoRA gradients equal autograd of InfoNCE + anchor against an independently computed base;
    dropping the anchor's gradient (or its base) makes them differ by far more than the tolerance."""
    torch.manual_seed(0)
    model_cfg = ModelConfig(name_or_path=str(tiny_model), query_max_length=16, passage_max_length=16)
    encoder, tokenizer = build_encoder(model_cfg, LoraConfig(r=4, alpha=8, dropout=0.0))
    encoder.eval()  # no dropout: the reference and the step see the same function
    for name, param in encoder.named_parameters():
        if "lora_B" in name:  # LoRA starts at the base (B = 0), where the anchor's gradient is 0: move off it
            torch.nn.init.normal_(param, std=0.5)
    table = PairTokenizer(model_cfg, 1)(rows_to_table(pair_rows(6, negatives=1, seed=3)))
    batch = PairCollator(tokenizer.pad_token_id, 1)(table.to_pydict())
    loss_cfg = LossConfig(negatives_per_query=1, cached=cached, mini_batch_size=4, base_anchor=WEIGHT)
    lora = [p for n, p in encoder.named_parameters() if p.requires_grad]

    def grads_of(anchor: BaseAnchorLoss | None) -> tuple[list[torch.Tensor], float]:
        encoder.zero_grad()
        out = train_step(FakeEngine(encoder), build_loss(loss_cfg), batch, anchor)
        return [p.grad.clone() for p in lora], out.loss

    got, got_loss = grads_of(BaseAnchorLoss(WEIGHT))
    without, _ = grads_of(None)

    encoder.zero_grad()
    groups = ["q", "p", "n"]
    emb = [encoder(batch[f"{g}_input_ids"], batch[f"{g}_attention_mask"]) for g in groups]  # (6, dim) each
    base = [_independent_base(tiny_model, batch[f"{g}_input_ids"], batch[f"{g}_attention_mask"]) for g in groups]
    cos = (torch.cat(emb) * torch.cat(base)).sum(-1)  # (18,)
    reference = InfoNCELoss()(emb[0], emb[1], emb[2], batch["p_hash"], batch["n_hash"]) + WEIGHT * (1 - cos).mean()
    reference.backward()
    want = [p.grad.clone() for p in lora]

    assert got_loss == pytest.approx(float(reference.detach()), abs=1e-5)
    gap = max(float((w - n).abs().max()) for w, n in zip(want, without))
    assert gap > 1e-3  # the anchor's gradient is large enough for the check below to see it
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_base_anchor_needs_lora() -> None:
    with pytest.raises(ConfigError, match="loss.base_anchor=0.5 needs the frozen base model"):
        resolve_job(
            {
                "model": {"name_or_path": "m"},
                "data": {"train_files": ["x"]},
                "lora": {"enabled": False},
                "loss": {"base_anchor": 0.5},
            }
        )


def _fake_run(tmp_path: Path, scores: dict[int, float], kept: list[int]) -> Path:
    """A run dir with eval lines for `scores` and checkpoint folders for the `kept` steps."""
    run = tmp_path / "run"
    run.mkdir()
    (run / LOG_FILE).write_text("".join(json.dumps({"step": s, "eval_score": v}) + "\n" for s, v in scores.items()))
    for step in kept:
        folder = run / f"checkpoint_{step:07d}"
        folder.mkdir()
        (folder / STATE_FILE).write_text(json.dumps({"step": step, "batches_done": step}))
        (folder / METRICS_FILE).write_text(json.dumps({"eval_score": scores[step]}))
    return run


def test_selection_keeps_the_base_and_says_so(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, {0: 0.50, 10: 0.45, 20: 0.48}, kept=[0, 20])
    assert best_checkpoint(run).name == "checkpoint_0000000"
    chosen = selection(run)
    assert chosen is not None and not chosen.beats_base
    assert (chosen.step, chosen.best_trained_step, chosen.best_trained_score) == (0, 20, 0.48)
    assert chosen.describe().startswith("NO trained checkpoint beats the base model")
    assert "base 0.5000, best trained 0.4800 at step 20" in chosen.describe()


def test_selection_reports_the_gain_and_prefers_the_base_on_a_tie(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, {0: 0.50, 10: 0.55, 20: 0.52}, kept=[10, 20])
    chosen = selection(run)
    assert chosen is not None and chosen.beats_base and chosen.step == 10
    assert chosen.describe() == "selected step 10: eval_score 0.5500 vs the base model's 0.5000 (+0.0500)"
    (tmp_path / "tie").mkdir()
    tie = _fake_run(tmp_path / "tie", {0: 0.50, 10: 0.50}, kept=[0, 10])
    assert best_checkpoint(tie).name == "checkpoint_0000000" and not selection(tie).beats_base
    assert selection(tmp_path / "missing") is None
