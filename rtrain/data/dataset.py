"""The Ray Data pipeline that feeds training: each rank's planned Parquet stream -> tokenize -> its worker.

The driver plans the rows (rtrain/data/layout.py) into one file per rank, so every worker's order is
fixed and global batches can be task-homogeneous; Ray Data reads and tokenizes each stream in
`map_batches` while the workers train.
"""

from __future__ import annotations

import ray.data

from rtrain.config.schema import JobConfig
from rtrain.data.tokenize import PairTokenizer


def dataset_name(rank: int) -> str:
    """The Ray Train dataset name of one rank's stream."""
    return f"train_{rank}"


def build_rank_datasets(files: list[str], cfg: JobConfig) -> dict[str, ray.data.Dataset]:
    """One dataset per rank: its planned stream, tokenized to unpadded id lists (workers pad per batch)."""
    tokenize = PairTokenizer(cfg.model, cfg.loss.negatives_per_query)
    return {
        dataset_name(rank): ray.data.read_parquet(path).map_batches(
            tokenize, batch_size=cfg.data.tokenize_batch_size, batch_format="pyarrow"
        )
        for rank, path in enumerate(files)
    }
