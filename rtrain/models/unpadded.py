"""Unpadded (varlen) encoding for BERT-family encoders: no padding position goes through a linear layer.

`unpadded_hidden(bert, input_ids, attention_mask)` computes the same (batch, seq, dim) token states as
`bert(input_ids, attention_mask).last_hidden_state` at the real tokens (zeros at padding), but packs the
batch's real tokens into one (tokens, dim) matrix before the encoder layers: the query/key/value, output
and feed-forward projections, LayerNorms and dropouts (LoRA adapters included, as they wrap those
projections) run on real tokens only. Attention alone needs the per-text structure; the packed
queries, keys and values are scattered back to (batch, heads, seq, head_dim) for one
`scaled_dot_product_attention` call with a key-padding mask, a few percent of the layer's work at
embedding-model lengths. The embeddings are computed on the padded ids, so each family's own position
ids (BERT from 0, RoBERTa/XLM-R after the padding index) stay as Hugging Face computes them.

Supported: models whose layers have BERT's module layout (`attention.self.query/key/value`,
`attention.output`, `intermediate`, `output`) and absolute position embeddings: BERT, MiniLM, RoBERTa,
XLM-R, ELECTRA, multilingual-e5. `unpadded_support` says why another model is not.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

LAYER_PARTS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
               "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm")  # fmt: skip


def bare_model(backbone: torch.nn.Module) -> torch.nn.Module:
    """The Hugging Face model under a PEFT wrapper (the LoRA layers live inside its modules), else `backbone`."""
    return backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone


def _has_submodule(module: torch.nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def unpadded_support(backbone: torch.nn.Module) -> str | None:
    """None when `backbone` can run unpadded, else why not (for the error message)."""
    model = bare_model(backbone)
    name = type(model).__name__
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if getattr(model, "embeddings", None) is None or layers is None or len(layers) == 0:
        return f"{name} has no embeddings + encoder.layer stack (a BERT-family encoder)"
    missing = [part for part in LAYER_PARTS if not _has_submodule(layers[0], part)]
    if missing:
        return f"{name}'s layers lack BERT's modules {missing}"
    position = getattr(model.config, "position_embedding_type", "absolute")
    if position != "absolute":
        return f"{name} uses position_embedding_type={position!r}; only absolute position embeddings are supported"
    if getattr(model.config, "is_decoder", False):
        return f"{name} is configured as a decoder (causal attention)"
    return None


def unpadded_error(backbone: torch.nn.Module, name_or_path: str) -> str | None:
    """The one-line error for `model.unpadded: true` on a model that cannot run unpadded, else None."""
    reason = unpadded_support(backbone)
    return None if reason is None else f"model.unpadded: {reason}; set model.unpadded=false for {name_or_path}"


def config_unpadded_error(path: str, name_or_path: str) -> str | None:
    """`unpadded_error` for the model folder at `path`, built from its config.json on the meta device (no weights
    read): the driver's check before any worker starts."""
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(path)
    except OSError:  # a hub name not cached here: the worker, which loads the model, checks it instead
        return None
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return unpadded_error(model, name_or_path)


def _attention(layer: torch.nn.Module, x: Tensor, where: Tensor, key_mask: Tensor, training: bool) -> Tensor:
    """Self-attention of one layer on packed tokens x (tokens, dim); `where` (tokens,) are their flat positions
    in the (batch * seq) grid. Returns the attention's (tokens, dim) output before its output projection."""
    attn = layer.attention.self
    batch, seq = key_mask.shape[0], key_mask.shape[-1]
    heads, head_dim = attn.num_attention_heads, attn.attention_head_size

    def grid(t: Tensor) -> Tensor:  # (tokens, heads * head_dim) -> (batch, heads, seq, head_dim), zeros at padding
        full = t.new_zeros(batch * seq, t.shape[-1]).index_copy(0, where, t)
        return full.view(batch, seq, heads, head_dim).transpose(1, 2)

    q, k, v = grid(attn.query(x)), grid(attn.key(x)), grid(attn.value(x))
    dropout = attn.dropout.p if training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout)  # (batch, heads, seq, hd)
    return out.transpose(1, 2).reshape(batch * seq, heads * head_dim)[where]  # (tokens, dim)


def _layer(layer: torch.nn.Module, x: Tensor, where: Tensor, key_mask: Tensor, training: bool) -> Tensor:
    """One BERT layer (post-LayerNorm, as BertLayer computes it) on packed tokens x (tokens, dim)."""
    context = _attention(layer, x, where, key_mask, training)
    out = layer.attention.output
    x = out.LayerNorm(out.dropout(out.dense(context)) + x)  # (tokens, dim)
    hidden = layer.intermediate(x)  # (tokens, intermediate)
    return layer.output(hidden, x)  # (tokens, dim): dense, dropout, LayerNorm(+ x)


def unpadded_hidden(backbone: torch.nn.Module, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """(batch, seq, dim) last token states, computed with the padding packed out; zeros at padded positions."""
    model = bare_model(backbone)
    batch, seq = input_ids.shape
    embedded = model.embeddings(input_ids=input_ids)  # (batch, seq, dim): the family's own position ids
    where = attention_mask.reshape(-1).nonzero().squeeze(1)  # (tokens,) flat positions of the real tokens
    x = embedded.reshape(batch * seq, -1)[where]  # (tokens, dim)
    key_mask = attention_mask.bool()[:, None, None, :]  # (batch, 1, 1, seq): attend to real tokens only
    for layer in model.encoder.layer:
        # the flag Hugging Face's own layer reads: set on each layer by activation/gradient_checkpointing_enable
        if getattr(layer, "gradient_checkpointing", False) and layer.training and torch.is_grad_enabled():
            x = checkpoint(_layer, layer, x, where, key_mask, model.training, use_reentrant=False)
        else:
            x = _layer(layer, x, where, key_mask, model.training)
    return x.new_zeros(batch * seq, x.shape[-1]).index_copy(0, where, x).view(batch, seq, -1)  # (batch, seq, dim)
