"""Length-aware encoding (#14): the same loss and gradients as the padded step, on fewer padded positions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rtrain.config.schema import LoraConfig, LossConfig, ModelConfig
from rtrain.data.schema import rows_to_table
from rtrain.data.tokenize import PairCollator, PairTokenizer
from rtrain.losses.registry import build_loss
from rtrain.models.encoder import build_encoder
from rtrain.models.length_aware import length_aware, length_chunks, padded_fraction
from rtrain.train.step import build_anchor, train_step

from tiny import FakeEngine, pair_rows


def test_chunks_respect_the_token_budget_longest_first() -> None:
    lengths = torch.tensor([3, 9, 1, 9, 4, 2, 30])
    chunks = length_chunks(lengths, token_budget=20)
    assert [c.tolist() for c in chunks] == [[6], [1, 3], [4, 0, 5, 2]]  # 30 alone; 2 x 9; 4 rows x 4 <= 20
    assert sorted(torch.cat(chunks).tolist()) == list(range(7))
    real, computed = padded_fraction((torch.arange(30)[None, :] < lengths[:, None]).long(), 20)
    assert (real, computed) == (58, 30 + 18 + 16) and padded_fraction(torch.ones(2, 5), None) == (10, 10)
    with pytest.raises(ValueError, match="token_budget must be >= 1"):
        length_aware(lambda ids, mask: ids, 0)


@pytest.mark.parametrize("cached", [False, True])
def test_length_aware_step_equals_the_padded_step(tiny_model: Path, cached: bool) -> None:
    """LoRA gradients and loss (InfoNCE + base anchor, plain and GradCache) equal the padded step's to 1e-5, on
    a 2-layer BERT whose texts differ in length; a wrong re-ordering would not (checked: shuffled rows differ)."""
    torch.manual_seed(0)
    model_cfg = ModelConfig(name_or_path=str(tiny_model), query_max_length=24, passage_max_length=40)
    encoder, tokenizer = build_encoder(model_cfg, LoraConfig(r=4, alpha=8, dropout=0.0))
    encoder.eval()  # no dropout: both steps compute the same function
    for name, param in encoder.named_parameters():
        if "lora_B" in name:  # off the base, so the anchor term has a gradient
            torch.nn.init.normal_(param, std=0.5)
    rows = pair_rows(12, negatives=1, seed=5)
    for i, row in enumerate(rows):  # lengths from a few tokens to the limit
        row["positive"] = " ".join([row["positive"]] * (1 + i % 4))
    table = PairTokenizer(model_cfg, 1)(rows_to_table(rows))
    batch = PairCollator(tokenizer.pad_token_id, 1)(table.to_pydict())
    loss_cfg = LossConfig(negatives_per_query=1, cached=cached, mini_batch_size=5, base_anchor=0.5)
    lora = [p for p in encoder.parameters() if p.requires_grad]

    def run(budget: int | None) -> tuple[float, list[torch.Tensor]]:
        encoder.zero_grad()
        out = train_step(FakeEngine(encoder), build_loss(loss_cfg), batch, build_anchor(loss_cfg), budget)
        return out.loss, [p.grad.clone() for p in lora]

    want_loss, want = run(None)
    real, computed = padded_fraction(batch["p_attention_mask"], 64)
    assert computed < batch["p_attention_mask"].numel()  # the budget really cuts padding here
    for budget in (64, 7, 10_000):  # several chunks, one row per chunk, one chunk
        got_loss, got = run(budget)
        assert got_loss == pytest.approx(want_loss, abs=1e-5)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
    ids, mask = batch["q_input_ids"], batch["q_attention_mask"]
    embedded = length_aware(encoder, 16)(ids, mask)
    torch.testing.assert_close(embedded, encoder(ids, mask), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(embedded[torch.randperm(12)], encoder(ids, mask), atol=1e-3)
