"""Pair rows -> token ids (in Ray Data `map_batches`) -> padded tensors (in the worker's collate).

Tokenization stores unpadded id lists; padding happens per batch in `collate`, so each batch is
only as wide as its longest text (dynamic padding).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from rtrain.config.schema import ModelConfig
from rtrain.data.batch import GROUP, N_HASH, NEGATIVE, P_HASH, POSITIVE, QUERY, ROW, TEXT_GROUPS
from rtrain.models.loading import resolve_model_path


def text_hash(text: str) -> int:
    """A stable signed 64-bit hash of a text (false-negative masking compares these)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def query_text(row_query: str, instruction: str | None, cfg: ModelConfig) -> str:
    """The query as the model sees it: prefix, optional instruction, query."""
    body = f"{instruction.strip()} {row_query}" if instruction else row_query
    return cfg.query_prefix + body


@functools.lru_cache(maxsize=4)
def _load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    """One tokenizer per Ray worker process, reused by every task that lands there."""
    return AutoTokenizer.from_pretrained(path)


class PairTokenizer:
    """Function for `Dataset.map_batches(batch_format='pyarrow')`: pair rows -> id lists + text hashes.

    A picklable object whose tokenizer loads lazily and is cached per process, so `map_batches`
    runs as stateless tasks (actor pools starve on 2-CPU machines: measured here).
    """

    def __init__(self, model_cfg: ModelConfig, negatives_per_query: int) -> None:
        self.cfg = model_cfg
        self.k = negatives_per_query
        self.path = resolve_model_path(model_cfg.name_or_path)

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return _load_tokenizer(self.path)

    def _ids(self, texts: list[str], max_length: int) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]

    def __call__(self, batch: pa.Table) -> pa.Table:
        queries = batch.column("query").to_pylist()
        instructions = (
            batch.column("instruction").to_pylist() if "instruction" in batch.column_names else [None] * len(queries)
        )
        positives = batch.column("positive").to_pylist()
        negatives = [list(n or [])[: self.k] for n in batch.column("negatives").to_pylist()]
        cfg = self.cfg
        q_ids = self._ids([query_text(q, i, cfg) for q, i in zip(queries, instructions)], cfg.query_max_length)
        p_ids = self._ids([cfg.passage_prefix + p for p in positives], cfg.passage_max_length)
        flat_neg = [cfg.passage_prefix + n for row in negatives for n in row]
        flat_ids = self._ids(flat_neg, cfg.passage_max_length) if flat_neg else []
        n_ids, start = [], 0
        for row in negatives:
            n_ids.append(flat_ids[start : start + len(row)])
            start += len(row)
        columns = {
            "q_ids": pa.array(q_ids, pa.list_(pa.int32())),
            "p_ids": pa.array(p_ids, pa.list_(pa.int32())),
            "n_ids": pa.array(n_ids, pa.list_(pa.list_(pa.int32()))),
            P_HASH: pa.array([text_hash(p) for p in positives], pa.int64()),
            N_HASH: pa.array([[text_hash(n) for n in row] for row in negatives], pa.list_(pa.int64())),
        }
        for key in (GROUP, ROW):  # the planner's task/source id and stream position, passed through
            if key in batch.column_names:
                columns[key] = batch.column(key)
        return pa.table(columns)


def _pad(seqs: list[Any], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences to the longest: (n, seq) ids and attention mask."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # (n, seq)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)  # (n, seq)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(np.asarray(s, dtype=np.int64))
        mask[i, : len(s)] = 1
    return ids, mask


class PairCollator:
    """Callable for `iter_torch_batches(collate_fn=...)`: a numpy batch of id lists -> padded tensors."""

    def __init__(self, pad_token_id: int, negatives_per_query: int) -> None:
        self.pad_id = pad_token_id
        self.k = negatives_per_query

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        out[QUERY.ids], out[QUERY.mask] = _pad(list(batch["q_ids"]), self.pad_id)  # (B, Lq)
        out[POSITIVE.ids], out[POSITIVE.mask] = _pad(list(batch["p_ids"]), self.pad_id)  # (B, Ld)
        out[P_HASH] = torch.tensor(np.asarray(batch[P_HASH], dtype=np.int64))  # (B,)
        for key in (GROUP, ROW):  # (B,) task/source index; (B,) position in the rank's stream
            if key in batch:
                out[key] = torch.as_tensor(np.asarray(batch[key], dtype=np.int64))
        if self.k > 0:
            negs = [n for row in batch["n_ids"] for n in list(row)]
            if len(negs) != self.k * len(batch["q_ids"]):
                raise ValueError(
                    f"batch has {len(negs)} negatives for {len(batch['q_ids'])} queries, expected {self.k} each"
                )
            out[NEGATIVE.ids], out[NEGATIVE.mask] = _pad(negs, self.pad_id)  # (B*k, Ld)
            n_hash = np.concatenate([np.asarray(list(h), dtype=np.int64) for h in batch[N_HASH]])
            out[N_HASH] = torch.as_tensor(n_hash)  # (B*k,)
        return out


def count_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Non-padding tokens in a collated batch (queries, positives and negatives)."""
    return int(sum(batch[g.mask].sum() for g in TEXT_GROUPS if g.mask in batch))
