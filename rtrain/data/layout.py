"""Lay the sampled rows out as global batches and write one Parquet stream per worker, plus a manifest.

A global batch (one optimizer step) holds `world x batch_size_per_worker x accumulation` rows; in
it, micro-batch j of rank r is rows `[(j * world + r) * b, ... + b)`. With `homogeneous_batches`,
each global batch is cut from one group (task or the rows' `source`) and the order of the batches
is shuffled with the job's seed, so every worker trains on the same group at every step.
Rows that do not fill a last global batch are dropped and counted, per epoch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rtrain.config.load import ConfigError
from rtrain.config.schema import JobConfig
from rtrain.data.batch import ROW
from rtrain.data.mix import Pool, configured_sources, epoch_sizes, load_pool, sample_epoch

MIX_DIR = "data"  # under the run dir: the planned per-rank streams and the mix manifest
MANIFEST = "manifest.json"


def rank_stream(out_dir: Path, rank: int) -> Path:
    """The planned stream of one rank: its rows in training order, with their `id` and stream position `row`."""
    return Path(out_dir) / f"rank-{rank:05d}.parquet"


@dataclass
class MixPlan:
    """What the driver planned: per-rank files, step counts, and what went into them."""

    files: list[str]  # one Parquet stream per rank
    total_steps: int
    epoch_ends: list[int]  # optimizer steps completed at the end of each epoch
    rows_per_epoch: int
    groups: list[str]  # names behind the `group` column
    manifest: dict[str, Any]


def _group_keys(cfg: JobConfig, pool: Pool) -> tuple[np.ndarray, list[str]]:
    """Per-row group index: by task, or by the rows' `source` column with homogeneous_batches=source."""
    column = "source" if cfg.data.homogeneous_batches == "source" else "task"
    values = pool.table[column].to_numpy(zero_copy_only=False)
    names = sorted(set(values.tolist()))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int32), names


def global_batches(
    order: np.ndarray, groups: np.ndarray | None, size: int, rng: np.random.Generator | None
) -> tuple[list[np.ndarray], int]:
    """Cut `order` into global batches of `size` rows (each from one group when `groups` is given).

    Returns the batches and the number of rows left over. Batch order is shuffled by `rng` when given.
    """
    if groups is None:
        n = len(order) // size
        return [order[i * size : (i + 1) * size] for i in range(n)], len(order) - n * size
    batches, left = [], 0
    for g in np.unique(groups[order]):
        rows = order[groups[order] == g]
        n = len(rows) // size
        batches += [rows[i * size : (i + 1) * size] for i in range(n)]
        left += len(rows) - n * size
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches, left


def pad_negatives(batch: np.ndarray, negatives: list[list[str]], positives: list[str], k: int) -> dict[int, list[str]]:
    """New negative lists, by position in `batch`, for rows short of k: the positives of the next rows
    of the same global batch (cyclically), skipping the row's own positive and texts already used."""
    padded: dict[int, list[str]] = {}
    for pos, row in enumerate(batch):
        have = negatives[row][:k]
        if len(have) >= k:
            continue
        fill = list(have)
        for step in range(1, len(batch)):
            text = positives[batch[(pos + step) % len(batch)]]
            if text != positives[row] and text not in fill:
                fill.append(text)
            if len(fill) == k:
                break
        if len(fill) < k:
            raise ConfigError(
                f"data.short_negatives=pad: a global batch of {len(batch)} rows has too few distinct positives "
                f"to pad {k} negatives; raise the batch size or lower loss.negatives_per_query"
            )
        padded[pos] = fill
    return padded


def _counts(table: pa.Table, rows: np.ndarray, column: str) -> dict[str, int]:
    values, counts = np.unique(table[column].to_numpy(zero_copy_only=False)[rows], return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}


def plan_mix(cfg: JobConfig, world: int, out_dir: Path) -> MixPlan:
    """Plan every epoch's batches and write `out_dir/rank-NNNNN.parquet` + `manifest.json`."""
    data, k = cfg.data, cfg.loss.negatives_per_query
    pool = load_pool(data, k, cfg.train.seed)
    sizes, notes = epoch_sizes(data, pool)
    batch = world * cfg.train.batch_size_per_worker * cfg.train.gradient_accumulation_steps
    if int(sizes.sum()) < batch:
        raise ConfigError(
            f"an epoch of {int(sizes.sum())} training pairs cannot fill one optimizer step of "
            f"scaling.num_workers={world} x train.batch_size_per_worker={cfg.train.batch_size_per_worker} x "
            f"train.gradient_accumulation_steps={cfg.train.gradient_accumulation_steps} = {batch} pairs: "
            "lower these or add data"
        )
    group_of_row, group_names = _group_keys(cfg, pool)
    homogeneous = data.homogeneous_batches != "off"
    need_pad = data.short_negatives == "pad" and k > 0
    negatives = pool.table["negatives"].to_pylist() if need_pad else []
    positives = pool.table["positive"].to_pylist() if need_pad else []

    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("rank-*.parquet"):
        old.unlink()
    paths = [rank_stream(out_dir, r) for r in range(world)]
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("query", pa.string()),
            ("positive", pa.string()),
            ("negatives", pa.list_(pa.string())),
            ("instruction", pa.string()),
            ("group", pa.int32()),
            (ROW, pa.int64()),
        ]
    )
    writers = [pq.ParquetWriter(p, schema) for p in paths]
    epochs: list[dict[str, Any]] = []
    epoch_ends: list[int] = []
    steps_done, epoch = 0, 0
    written = [0] * world  # rows in each rank's stream so far
    first_rows = np.array([], dtype=np.int64)
    try:
        while True:
            order = sample_epoch(data, pool, sizes, cfg.train.seed, epoch)
            rng = np.random.default_rng([cfg.train.seed, epoch, 1]) if data.shuffle else None
            batches, left = global_batches(order, group_of_row if homogeneous else None, batch, rng)
            if not batches:
                raise ConfigError(
                    f"epoch {epoch}: no {data.homogeneous_batches} group has {batch} rows for one global batch "
                    "with data.homogeneous_batches on: lower the batch size or turn it off"
                )
            if cfg.train.max_steps is not None:
                batches = batches[: cfg.train.max_steps - steps_done]
            padded: dict[int, list[str]] = {}
            for i, b in enumerate(batches if need_pad else []):  # keyed by slot: epoch position of the row
                padded.update(
                    {i * batch + pos: negs for pos, negs in pad_negatives(b, negatives, positives, k).items()}
                )
            _write_epoch(writers, pool.table, group_of_row, batches, padded, cfg, world, written)
            rows = np.concatenate(batches)
            if epoch == 0:
                first_rows = rows
            steps_done += len(batches)
            epoch_ends.append(steps_done)
            epochs.append(
                {"rows": int(len(rows)), "steps": len(batches), "rows_left_over": int(left), "padded_rows": len(padded)}
            )
            epoch += 1
            if (cfg.train.max_steps is None and epoch == cfg.train.epochs) or steps_done == cfg.train.max_steps:
                break
    finally:
        for w in writers:
            w.close()
    manifest = {
        "world_size": world,
        "global_batch": batch,
        "batch_size_per_worker": cfg.train.batch_size_per_worker,
        "accumulation": cfg.train.gradient_accumulation_steps,
        "sources": [
            {
                "name": s.name,
                "files": s.files,
                "weight": s.weight,
                "rows_read": pool.rows_read[s.name],
                "rows_selected": int(len(pool.rows_of(i))),
                "rows_per_epoch": int(sizes[i]),
            }
            for i, s in enumerate(configured_sources(data))
        ],
        "dropped_by_filter": pool.dropped,
        "notes": notes,
        "sampling": data.sampling,
        "homogeneous_batches": data.homogeneous_batches,
        "short_negatives": data.short_negatives,
        "epochs": epochs,
        "total_steps": steps_done,
        "first_epoch": {c: _counts(pool.table, first_rows, c) for c in ("source", "task", "query_lang")},
    }
    plan = MixPlan([str(p) for p in paths], steps_done, epoch_ends, int(sizes.sum()), group_names, manifest)
    (out_dir / MANIFEST).write_text(json.dumps({**manifest, "plan": {**asdict(plan), "manifest": None}}, indent=2))
    return plan


def _write_epoch(
    writers: list[pq.ParquetWriter],
    table: pa.Table,
    group_of_row: np.ndarray,
    batches: list[np.ndarray],
    padded: dict[int, list[str]],
    cfg: JobConfig,
    world: int,
    written: list[int],
) -> None:
    """Append one epoch to every rank's stream: rank r takes micro-batch slots r, r + world, ...
    Each row carries its position in the stream (`row`), counted on from `written[r]`."""
    b = cfg.train.batch_size_per_worker
    stacked = np.stack(batches).reshape(len(batches), -1, world, b)  # (steps, accum, world, b)
    slots = np.arange(stacked.size).reshape(stacked.shape)  # (steps, accum, world, b)
    for r, writer in enumerate(writers):
        rows = stacked[:, :, r, :].reshape(-1)  # (steps * accum * b,) in training order
        part = table.take(pa.array(rows)).select(["id", "query", "positive", "negatives", "instruction"])
        if padded:
            negs = part["negatives"].to_pylist()
            negs = [padded.get(int(slot), n) for slot, n in zip(slots[:, :, r, :].reshape(-1), negs)]
            part = part.set_column(3, "negatives", pa.array(negs, pa.list_(pa.string())))
        part = part.append_column("group", pa.array(group_of_row[rows], pa.int32()))
        part = part.append_column(ROW, pa.array(np.arange(written[r], written[r] + len(rows)), pa.int64()))
        written[r] += len(rows)
        writer.write_table(part)


def mix_summary(plan: MixPlan) -> str:
    """One log line: rows per epoch by source, task and language; what the filters dropped."""
    first = plan.manifest["first_epoch"]
    parts = [f"{plan.rows_per_epoch} pairs per epoch"]
    for column in ("source", "task", "query_lang"):
        parts.append(f"{column}: " + ", ".join(f"{k}={v}" for k, v in sorted(first[column].items())))
    dropped = {k: v for k, v in plan.manifest["dropped_by_filter"].items() if v}
    if dropped:
        parts.append(f"dropped by filter: {dropped}")
    left = sum(e["rows_left_over"] for e in plan.manifest["epochs"])
    if left:
        parts.append(f"{left} rows left over by incomplete global batches")
    return "; ".join(parts + plan.manifest["notes"])
