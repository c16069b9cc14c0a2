"""The Ray Data pipeline that feeds training: each rank's planned Parquet stream -> tokenize -> its worker.

The driver plans the rows (rtrain/data/layout.py) into one file per rank, so every worker's order is
fixed and global batches can be task-homogeneous; Ray Data reads and tokenizes each stream in
`map_batches` while the workers train.
"""

from __future__ import annotations

import ray.data
from ray.data.expressions import col

from rtrain.config.schema import JobConfig
from rtrain.data.batch import ROW
from rtrain.data.tokenize import PairTokenizer


def dataset_name(rank: int) -> str:
    """The Ray Train dataset name of one rank's stream."""
    return f"train_{rank}"


def build_rank_datasets(files: list[str], cfg: JobConfig, start_row: int = 0) -> dict[str, ray.data.Dataset]:
    """One dataset per rank: its planned stream, tokenized to unpadded id lists (workers pad per batch).

    `start_row` > 0 (a resumed run: the rows of each rank's stream its checkpoint already trained on)
    starts every stream there: the rows before it are filtered out ahead of tokenization, so resuming
    costs the same after 10k rows as after 10M.
    """
    tokenize = PairTokenizer(cfg.model, cfg.loss.negatives_per_query)
    out = {}
    for rank, path in enumerate(files):
        stream = ray.data.read_parquet(path)
        if start_row:
            stream = stream.filter(expr=col(ROW) >= start_row)
        out[dataset_name(rank)] = stream.map_batches(
            tokenize, batch_size=cfg.data.tokenize_batch_size, batch_format="pyarrow"
        )
    return out
