"""Which rows an epoch trains on: read the sources, filter by task and language, size and sample the mix.

Filters apply to all sources together, in this order: `data.tasks`, `data.languages`,
`data.num_languages` (keep the N query languages with the most rows), `data.num_tasks` (the N tasks
with the most rows), rows short of negatives (`short_negatives: skip`), then each source's `max_rows`.
Every filter's dropped rows are counted in the manifest.

Epoch size: with weights w_i over sources holding n_i rows, the largest epoch that keeps the
proportions without replacement has T = min_i n_i * sum(w) / w_i rows; `fraction` scales it and
`max_rows` caps it (with replacement, `max_rows` may exceed it: sources are upsampled).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rtrain.config.load import ConfigError
from rtrain.config.schema import DataConfig, SourceConfig
from rtrain.data.files import file_format, iter_rows, validate_pair_files
from rtrain.data.schema import rows_to_table

COLUMNS = ["id", "query", "positive", "negatives", "instruction", "task", "query_lang", "source"]


@dataclass
class Pool:
    """All selected rows of all sources in one table, with the source index of each row."""

    table: pa.Table
    source_of_row: np.ndarray  # (rows,) index into `names`
    names: list[str]
    weights: list[float | None]
    dropped: dict[str, int] = field(default_factory=dict)  # filter -> rows removed
    rows_read: dict[str, int] = field(default_factory=dict)  # source -> rows in its files

    def rows_of(self, source: int) -> np.ndarray:
        return np.flatnonzero(self.source_of_row == source)


def configured_sources(data: DataConfig) -> list[SourceConfig]:
    """`data.sources`, or `data.train_files` as one source named 'train'."""
    return data.sources or [SourceConfig(name="train", files=data.train_files)]


def read_table(path: Path) -> pa.Table:
    """One validated pair file as a table with COLUMNS (`instruction` null where absent)."""
    if file_format(path) == "parquet":
        table = pq.read_table(path)
    else:
        table = rows_to_table([row for _, row, _ in iter_rows(path) if row is not None])
    if "instruction" not in table.column_names:
        table = table.append_column("instruction", pa.nulls(len(table), pa.string()))
    return table.select(COLUMNS).cast(
        pa.schema([(c, pa.list_(pa.string()) if c == "negatives" else pa.string()) for c in COLUMNS])
    )


def _keep(pool: Pool, mask: np.ndarray, reason: str) -> Pool:
    pool.dropped[reason] = pool.dropped.get(reason, 0) + int((~mask).sum())
    pool.table = pool.table.filter(pa.array(mask))
    pool.source_of_row = pool.source_of_row[mask]
    return pool


def _most_common(values: np.ndarray, n: int) -> set[str]:
    """The n most frequent values (ties broken by name), so diversity knobs pick a stable set."""
    counts = Counter(values.tolist())
    return {v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]}


def load_pool(data: DataConfig, negatives_per_query: int, seed: int) -> Pool:
    """Validate and read every source, then apply the filters in the documented order."""
    sources = configured_sources(data)
    need = negatives_per_query if data.short_negatives == "error" else 0
    tables, owner, rows_read = [], [], {}
    for i, source in enumerate(sources):
        files, stats = validate_pair_files(source.files, need)
        parts = [read_table(f) for f in files]
        table = pa.concat_tables(parts)
        rows_read[source.name] = len(table)
        tables.append(table)
        owner.append(np.full(len(table), i, dtype=np.int32))
    pool = Pool(
        pa.concat_tables(tables),
        np.concatenate(owner),
        [s.name for s in sources],
        [s.weight for s in sources],
        rows_read=rows_read,
    )
    if data.tasks is not None:
        _keep(pool, np.isin(pool.table["task"].to_numpy(zero_copy_only=False), data.tasks), "tasks")
    if data.languages is not None:
        _keep(pool, np.isin(pool.table["query_lang"].to_numpy(zero_copy_only=False), data.languages), "languages")
    if data.num_languages is not None:
        langs = pool.table["query_lang"].to_numpy(zero_copy_only=False)
        _keep(pool, np.isin(langs, list(_most_common(langs, data.num_languages))), "num_languages")
    if data.num_tasks is not None:
        tasks = pool.table["task"].to_numpy(zero_copy_only=False)
        _keep(pool, np.isin(tasks, list(_most_common(tasks, data.num_tasks))), "num_tasks")
    if data.short_negatives == "skip":
        lengths = pc.list_value_length(pool.table["negatives"]).to_numpy(zero_copy_only=False)
        _keep(pool, lengths >= negatives_per_query, "short_negatives")
    rng = np.random.default_rng([seed, 7])
    mask = np.ones(len(pool.table), dtype=bool)
    for i, source in enumerate(sources):
        rows = pool.rows_of(i)
        if source.max_rows is not None and len(rows) > source.max_rows:
            mask[rng.choice(rows, len(rows) - source.max_rows, replace=False)] = False
    _keep(pool, mask, "source_max_rows")
    empty = [name for i, name in enumerate(pool.names) if len(pool.rows_of(i)) == 0]
    if empty:
        raise ConfigError(
            f"data.sources {empty} have no rows left after the filters {_active_filters(data)} "
            f"(dropped: {pool.dropped}): widen the filters or remove these sources"
        )
    return pool


def _active_filters(data: DataConfig) -> dict[str, Any]:
    keys = ("tasks", "languages", "num_tasks", "num_languages")
    return {k: getattr(data, k) for k in keys if getattr(data, k) is not None}


def _largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    """Integers summing to `total`, proportional to `shares`."""
    exact = total * shares / shares.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def epoch_sizes(data: DataConfig, pool: Pool) -> tuple[np.ndarray, list[str]]:
    """Rows each source contributes to every epoch, and notes on caps that applied."""
    available = np.array([len(pool.rows_of(i)) for i in range(len(pool.names))], dtype=np.int64)
    weights = np.array([w if w is not None else n for w, n in zip(pool.weights, available)], dtype=np.float64)
    notes: list[str] = []
    if data.sampling == "without_replacement":
        largest = int(np.floor(np.min(available * weights.sum() / weights)))
        total = int(round(data.fraction * largest))
        if data.max_rows is not None and data.max_rows > total:
            if data.max_rows > largest:
                notes.append(
                    f"data.max_rows={data.max_rows} is more than the {largest} rows the sources hold at these "
                    f"weights without replacement: using {total}; set data.sampling=with_replacement to upsample"
                )
        elif data.max_rows is not None:
            total = data.max_rows
    else:
        total = data.max_rows if data.max_rows is not None else int(round(data.fraction * available.sum()))
    sizes = _largest_remainder(total, weights)
    if data.sampling == "without_replacement":
        sizes = np.minimum(sizes, available)  # rounding can ask for one row more than a source has
    return sizes, notes


def sample_epoch(data: DataConfig, pool: Pool, sizes: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """Row indices into `pool.table` for one epoch, in training order (before batch layout)."""
    rng = np.random.default_rng([seed, epoch])
    picked = []
    for i, size in enumerate(sizes):
        rows = pool.rows_of(i)
        if data.sampling == "with_replacement":
            picked.append(rng.choice(rows, int(size), replace=True))
        elif size == len(rows) and not data.shuffle:
            picked.append(rows)
        else:
            chosen = rng.choice(rows, int(size), replace=False)
            picked.append(chosen if data.shuffle else np.sort(chosen))
    order = np.concatenate(picked)
    return rng.permutation(order) if data.shuffle else order
