"""`generate(cfg, out_dir)`: shards (split x task x language) -> train.parquet, heldout.parquet, manifest.json.

Small runs build shards in-process; above `RAY_ROW_THRESHOLD` rows the shards run as a Ray Data job.
Both paths build each shard with the same code and RNG and sort by shard order, so they write the
same bytes. Files are written under temporary names and renamed at the end; any old manifest is
removed first and the new one is written last, so a run stopped half-way never looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import babel
import pyarrow as pa
import pyarrow.parquet as pq
from babel.core import get_global

from rtrain.data.schema import PAIR_SCHEMA, rows_to_table
from rtrain.synth.config import CROSS_LINGUAL_TASKS, SynthConfig
from rtrain.synth.entities import SPLITS, build_pools, pool_sizes
from rtrain.synth.kinds import available_kinds
from rtrain.synth.spec import KINDS
from rtrain.synth.tasks import SOURCE, GenContext, build_shard
from rtrain.synth.templates import load_templates

GENERATOR_VERSION = "1.0.0"
RAY_ROW_THRESHOLD = 200_000  # total rows above which shards run on Ray Data
FILES = {"train": "train.parquet", "heldout": "heldout.parquet"}
MANIFEST = "manifest.json"
_ORDER = ("_shard", "_row")  # ordering columns carried through Ray, dropped before writing


@dataclass(frozen=True)
class ShardSpec:
    """One unit of work: `count` rows of `task` with queries in `lang` for `split`; `index` fixes file order."""

    index: int
    split: str
    task: str
    lang: str
    count: int


def build_context(cfg: SynthConfig, template_dir: str | Path | None = None) -> GenContext:
    """Templates (checked) and entity pools (partitioned) for a config."""
    languages = cfg.language_list
    return GenContext(
        languages=languages,
        templates=load_templates(languages, template_dir),
        pools=build_pools(languages, cfg.heldout_fraction, cfg.seed),
        negatives=cfg.negatives_per_row,
        cross_lingual_rate=cfg.cross_lingual_rate,
        seed=cfg.seed,
    )


def shard_specs(cfg: SynthConfig) -> list[ShardSpec]:
    """Every shard, in file order: split, then task, then language (each in config order)."""
    counts = {"train": cfg.examples_per_task_language, "heldout": cfg.heldout_examples_per_task_language}
    specs = [(split, task, lang) for split in SPLITS for task in cfg.task_list for lang in cfg.language_list]
    return [ShardSpec(i, s, t, lang, counts[s]) for i, (s, t, lang) in enumerate(specs) if counts[s] > 0]


def shard_table(ctx: GenContext, spec: ShardSpec) -> pa.Table:
    """One shard as an Arrow table: PAIR_SCHEMA columns plus `_shard`, `_row` ordering columns."""
    table = rows_to_table(build_shard(ctx, spec.split, spec.task, spec.lang, spec.count))
    table = table.append_column("_shard", pa.array([spec.index] * table.num_rows, pa.int32()))
    return table.append_column("_row", pa.array(range(table.num_rows), pa.int32()))


def _assemble(tables: list[pa.Table], specs: list[ShardSpec]) -> dict[str, pa.Table]:
    """Concatenate shard tables in shard order and cut them into one PAIR_SCHEMA table per split."""
    split_of = {spec.index: spec.split for spec in specs}
    tables = [t for t in tables if t.num_rows]
    ordered = pa.concat_tables(tables, promote_options="permissive").sort_by([(c, "ascending") for c in _ORDER])
    shard_ids = ordered.column("_shard").to_pylist()
    out = {}
    for split in SPLITS:
        keep = pa.array([split_of[i] == split for i in shard_ids])
        part = ordered.filter(keep).select(PAIR_SCHEMA.names)
        columns = [part.column(name).combine_chunks() for name in PAIR_SCHEMA.names]
        out[split] = pa.Table.from_arrays(columns, schema=PAIR_SCHEMA)
    return out


def _run_local(ctx: GenContext, specs: list[ShardSpec]) -> list[pa.Table]:
    return [shard_table(ctx, spec) for spec in specs]


def _run_ray(ctx: GenContext, specs: list[ShardSpec]) -> list[pa.Table]:
    """Shards as a Ray Data job: one input row per shard, a few blocks per CPU, `map_batches` builds them."""
    import ray
    import ray.data

    if not ray.is_initialized():
        # workers' output comes to the driver (in `rtrain run`: its log file), as for the train stage after it
        ray.init(ignore_reinit_error=True, include_dashboard=False, configure_logging=False)
    data_ctx = ray.data.DataContext.get_current()
    progress_bars, data_ctx.enable_progress_bars = data_ctx.enable_progress_bars, False

    def build(batch: pa.Table) -> pa.Table:
        return pa.concat_tables([shard_table(ctx, ShardSpec(**row)) for row in batch.to_pylist()])

    # a few blocks per CPU: each task builds several shards, so per-task overhead stays small
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    items = [asdict(spec) for spec in specs]
    ds = ray.data.from_items(items, override_num_blocks=min(len(items), 4 * cpus)).map_batches(
        build, batch_size=None, batch_format="pyarrow", zero_copy_batch=True
    )
    try:
        return list(ray.get(ds.to_arrow_refs()))
    finally:
        data_ctx.enable_progress_bars = progress_bars


def _write_parquet(table: pa.Table, path: Path) -> str:
    """Write with fixed settings (same bytes for the same table) via a temp name; returns the sha256."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd", row_group_size=100_000, use_dictionary=True, write_statistics=True)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    os.replace(tmp, path)
    return digest


def _counts(table: pa.Table) -> dict[str, Any]:
    """Row counts per task, language and source (shape of one split's entry in the manifest)."""
    cols = {name: table.column(name).to_pylist() for name in ("task", "query_lang", "doc_lang", "source")}

    def count(values: list) -> dict[str, int]:
        return dict(sorted(Counter(values).items()))

    return {
        "rows": table.num_rows,
        "by_task": count(cols["task"]),
        "by_query_lang": count(cols["query_lang"]),
        "by_doc_lang": count(cols["doc_lang"]),
        "by_source": count(cols["source"]),
        "by_task_language": count(f"{t}/{lang}" for t, lang in zip(cols["task"], cols["query_lang"])),
        "cross_lingual_rows": sum(q != d for q, d in zip(cols["query_lang"], cols["doc_lang"])),
    }


def generate(
    cfg: SynthConfig,
    out_dir: str | Path,
    *,
    template_dir: str | Path | None = None,
    ray_threshold: int | None = None,
) -> dict[str, Any]:
    """Generate both splits into `out_dir` and return the manifest (also written as manifest.json).

    `ray_threshold` overrides `RAY_ROW_THRESHOLD` (total rows above which Ray Data runs the shards);
    `template_dir` replaces the packaged templates (a folder of `<lang>.yaml`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # an old manifest must not vouch for files being replaced
    for stale in out.glob(".*.tmp-*"):
        stale.unlink()
    ctx = build_context(cfg, template_dir)
    specs = shard_specs(cfg)
    threshold = RAY_ROW_THRESHOLD if ray_threshold is None else ray_threshold
    engine = "ray" if cfg.total_rows() > threshold else "local"
    tables = _assemble((_run_ray if engine == "ray" else _run_local)(ctx, specs), specs)

    splits: dict[str, Any] = {}
    for split in SPLITS:
        digest = _write_parquet(tables[split], out / FILES[split])
        splits[split] = {"file": FILES[split], "sha256": digest, **_counts(tables[split])}
    manifest = {
        "generator": "rtrain.synth",
        "generator_version": GENERATOR_VERSION,
        "source": SOURCE,
        "seed": cfg.seed,
        "config": cfg.model_dump(mode="json"),
        "engine": engine,
        "babel_version": babel.__version__,  # slot values come from this CLDR release: pin both to reproduce
        "cldr_version": get_global("cldr").get("version"),
        "cross_lingual_tasks": sorted(CROSS_LINGUAL_TASKS) + ["bitext (always)"],
        "splits": splits,
        "entities": {split: pool_sizes(ctx.pools.splits[split]) for split in SPLITS},
        "kinds": {split: available_kinds(ctx.pools.splits[split], list(KINDS)) for split in SPLITS},
        "skipped_entities": ctx.pools.skipped,
    }
    tmp = out / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST)
    return manifest
