"""The Ray Data pipeline that feeds training: read pair files -> tokenize -> per-worker shards."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import ray.data

from rtrain.config.schema import JobConfig
from rtrain.data.files import file_format
from rtrain.data.tokenize import PairTokenizer

READ_COLUMNS = ["query", "positive", "negatives", "instruction"]


def read_pairs(files: list[Path]) -> ray.data.Dataset:
    """One dataset over Parquet and JSONL pair files (already validated by `validate_pair_files`)."""
    parquet = [str(f) for f in files if file_format(f) == "parquet"]
    jsonl = [str(f) for f in files if file_format(f) == "jsonl"]
    parts: list[ray.data.Dataset] = []
    if parquet:
        parts.append(ray.data.read_parquet(parquet))
    if jsonl:
        parts.append(ray.data.read_json(jsonl, lines=True))
    parts = [_with_columns(p) for p in parts]
    return parts[0] if len(parts) == 1 else parts[0].union(*parts[1:])


def _with_columns(ds: ray.data.Dataset) -> ray.data.Dataset:
    """Exactly READ_COLUMNS, the optional `instruction` as nulls where a file has none (so unions line up)."""
    if "instruction" not in ds.columns():
        ds = ds.add_column("instruction", lambda t: pa.nulls(len(t), pa.string()), batch_format="pyarrow")
    return ds.select_columns(READ_COLUMNS)


def build_train_dataset(files: list[Path], cfg: JobConfig) -> ray.data.Dataset:
    """Pairs tokenized in `map_batches` (unpadded id lists); workers pad per batch in the collate."""
    return read_pairs(files).map_batches(
        PairTokenizer(cfg.model, cfg.loss.negatives_per_query),
        batch_size=cfg.data.tokenize_batch_size,
        batch_format="pyarrow",
    )
