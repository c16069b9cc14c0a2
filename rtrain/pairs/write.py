"""Build every source of a spec: read, drop identical and duplicate pairs, sample, shuffle, write.

Output in `out`: `<source name>.parquet` (the pair schema, ids `<source>-<n>`) per source,
`_heldout/<source name>.parquet` for sources with `heldout_rows` (rows for model selection from what
`max_rows` left out, sharing no text with the training rows; folder listings of training files skip
`_` folders), and
`manifest.json` (per source: rows by task and language pair, skipped counts with reasons and
examples, the input files with sizes and mtimes, the source's spec). The same spec, seed and inputs
give byte-identical files: nothing time-dependent goes into them. The old manifest is removed first
and the new one written last, so a stopped build never looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rtrain.data.schema import rows_to_table
from rtrain.errors import problems_message
from rtrain.pairs.mapped import read_hf_dataset, read_pair_files
from rtrain.pairs.monolingual import read_monolingual
from rtrain.pairs.parallel import read_parallel
from rtrain.pairs.spec import PairsSpec
from rtrain.pairs.squad import read_squad
from rtrain.pairs.textio import CorpusError, Pair, Skips, input_file

GENERATOR_VERSION = "1.0.0"
MANIFEST = "manifest.json"
HELDOUT_DIR = "_heldout"  # underscore: folder listings of training files skip it (as Arrow and Spark do)
Reader = Callable[[Any, PairsSpec, Skips], tuple[list[Pair], list[Path]]]
READERS: dict[str, Reader] = {
    "parallel": read_parallel,
    "squad": read_squad,
    "monolingual": read_monolingual,
    "pairs": read_pair_files,
    "hf_dataset": read_hf_dataset,
}


@dataclass
class PairsBuild:
    """What a build wrote: the manifest (also in manifest.json) and seconds per source (not in the manifest)."""

    manifest: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Selection:
    """The rows a source keeps for training and for model selection, and what each cut dropped."""

    train: list[Pair]
    heldout: list[Pair]
    dropped_by_max_rows: int = 0
    dropped_for_heldout: int = 0  # left-out candidates sharing a query or positive text with a training row


def select(
    pairs: list[Pair], seed: int, max_rows: int | None, shuffle: bool, skips: Skips, heldout_rows: int = 0
) -> Selection:
    """Drop identical and repeated (query, positive) pairs, sample down to `max_rows`, set up to
    `heldout_rows` aside, and shuffle.

    Held-out rows come from the candidates the `max_rows` sample left out, minus every one that shares
    a query or positive text with a training row: a model selected on them has never seen their texts,
    and the training rows are the same with or without a held-out set.
    """
    seen: dict[tuple[str, str], str] = {}
    kept: list[Pair] = []
    for pair in pairs:
        key = (pair.query, pair.positive)
        if pair.query == pair.positive:
            skips.add("query equals positive", pair.where)
        elif key in seen:
            skips.add("duplicate (query, positive)", f"{pair.where} (first at {seen[key]})")
        else:
            seen[key] = pair.where
            kept.append(pair)
    rng = random.Random(seed)
    out = Selection(train=kept, heldout=[])
    if max_rows is not None and len(kept) > max_rows:
        out.dropped_by_max_rows = len(kept) - max_rows
        chosen = sorted(rng.sample(range(len(kept)), max_rows))
        out.train = [kept[i] for i in chosen]
        if heldout_rows:
            texts = {text for p in out.train for text in (p.query, p.positive)}
            chosen_set = set(chosen)
            left = [p for i, p in enumerate(kept) if i not in chosen_set]
            unseen = [p for p in left if p.query not in texts and p.positive not in texts]
            out.dropped_for_heldout = len(left) - len(unseen)
            out.heldout = random.Random(seed + 1).sample(unseen, min(heldout_rows, len(unseen)))
    if shuffle:
        rng.shuffle(out.train)
    return out


def to_rows(name: str, pairs: list[Pair]) -> list[dict[str, Any]]:
    """Pair-schema rows with ids `<name>-<n>`."""
    return [
        {
            "id": f"{name}-{n}",
            "query": p.query,
            "positive": p.positive,
            "negatives": list(p.negatives),
            "task": p.task,
            "query_lang": p.query_lang,
            "doc_lang": p.doc_lang,
            "source": name,
            "instruction": p.instruction,
        }
        for n, p in enumerate(pairs)
    ]


def write_parquet(rows: list[dict[str, Any]], path: Path) -> str:
    """Write rows with fixed settings (same bytes for the same rows) via a temp name; returns the sha256."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(rows_to_table(rows), tmp, compression="zstd", row_group_size=100_000, write_statistics=True)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    os.replace(tmp, path)
    return digest


def _file_info(path: Path) -> list[dict[str, Any]]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [{"path": str(p), "bytes": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns} for p in files]


def _counts(pairs: list[Pair]) -> dict[str, Any]:
    def count(values: Any) -> dict[str, int]:
        return dict(sorted(Counter(values).items()))

    return {
        "by_task": count(p.task for p in pairs),
        "by_language_pair": count(f"{p.query_lang}->{p.doc_lang}" for p in pairs),
        "with_negatives": sum(1 for p in pairs if p.negatives),
    }


def check_inputs(spec: PairsSpec) -> None:
    """Every input of every source exists and lies outside the eval sets; one CorpusError listing all problems."""
    problems = []
    for src in spec.sources:
        for raw in src.input_paths():
            try:
                input_file(spec, raw)
            except CorpusError as err:
                problems.append(f"source {src.name!r}: {err}")
    if problems:
        raise CorpusError(problems_message("the spec's inputs", problems))


def _previous_outputs(out: Path) -> list[Path]:
    """The files an earlier build's manifest names, kept to plain names in `out` and `out/_heldout`."""
    old = out / MANIFEST
    if not old.is_file():
        return []
    try:
        sources = json.loads(old.read_text(encoding="utf-8")).get("sources", {})
        names = [f for s in sources.values() for f in (s.get("file", ""), (s.get("heldout") or {}).get("file", ""))]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return []
    plain = {name for name in names if name and Path(name).name == name}
    held = {name for name in names if Path(name).parent == Path(HELDOUT_DIR) and Path(name).name not in ("", "..")}
    return [out / name for name in sorted(plain | held)]


def build_pairs(spec: PairsSpec, out: str | Path, log: Callable[[str], None] | None = None) -> PairsBuild:
    """Read every source and write `<out>/<name>.parquet` + `<out>/manifest.json`; returns the manifest.

    Every source is read and written to a staging folder inside `out` first: a source that fails leaves an
    earlier build in `out` as it was. Only then are the earlier build's files (those its manifest names)
    replaced.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CorpusError(f"--out {out} is a file; name a folder for the pair files and their manifest")
    check_inputs(spec)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".rtrain-pairs-", dir=out))
    try:
        build = _build_into(spec, staging, log)
        written = sorted(p.relative_to(staging) for p in staging.rglob("*.parquet"))
        for path in [out / MANIFEST, *_previous_outputs(out)]:  # the manifest first: no stale claim survives
            path.unlink(missing_ok=True)
        for name in written:
            (out / name).parent.mkdir(exist_ok=True)
            os.replace(staging / name, out / name)
        tmp = staging / MANIFEST
        tmp.write_text(json.dumps(build.manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, out / MANIFEST)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return build


def _build_into(spec: PairsSpec, out: Path, log: Callable[[str], None] | None) -> PairsBuild:
    """Read every source and write its files into `out` (a fresh folder); the manifest is the caller's."""
    build = PairsBuild(manifest={})
    sources: dict[str, Any] = {}
    for src in spec.sources:
        started = time.perf_counter()
        skips = Skips()
        candidates, paths = READERS[src.kind](src, spec, skips)
        chosen = select(candidates, src.seed, src.max_rows, src.shuffle, skips, src.heldout_rows)
        kept = chosen.train
        if src.heldout_rows and not chosen.heldout:
            raise CorpusError(
                f"source {src.name!r}: heldout_rows={src.heldout_rows} but no candidate is left for it: held-out "
                f"rows come from what max_rows leaves out ({len(kept):,} kept of "
                f"{len(kept) + chosen.dropped_by_max_rows:,}, "
                f"{chosen.dropped_for_heldout:,} of the rest share a text with them); lower max_rows"
            )
        if not kept:
            raise CorpusError(
                f"source {src.name!r}: no pair left after skipping {dict(skips.counts)}; check the files and the spec"
            )
        file = f"{src.name}.parquet"
        digest = write_parquet(to_rows(src.name, kept), out / file)
        heldout: dict[str, Any] = {}
        if chosen.heldout:
            (out / HELDOUT_DIR).mkdir(exist_ok=True)
            held_file = f"{HELDOUT_DIR}/{src.name}.parquet"
            heldout = {
                "heldout": {
                    "file": held_file,
                    "rows": len(chosen.heldout),
                    "requested": src.heldout_rows,
                    "sha256": write_parquet(to_rows(f"{src.name}-heldout", chosen.heldout), out / held_file),
                    "dropped_for_shared_text": chosen.dropped_for_heldout,
                    **_counts(chosen.heldout),
                }
            }
        sources[src.name] = {
            "kind": src.kind,
            "file": file,
            "sha256": digest,
            "rows": len(kept),
            "candidates": len(candidates),
            "dropped_by_max_rows": chosen.dropped_by_max_rows,
            **heldout,
            **_counts(kept),
            "skipped_total": skips.total,
            "skipped": skips.as_dict(),
            "inputs": [info for p in paths for info in _file_info(p)],
            "spec": src.model_dump(mode="json"),
        }
        build.seconds[src.name] = time.perf_counter() - started
        if log is not None:
            log(f"[pairs] {src.name}: {len(kept):,} rows ({skips.total:,} skipped) in {build.seconds[src.name]:.1f} s")
    build.manifest = {
        "generator": "rtrain.pairs",
        "generator_version": GENERATOR_VERSION,
        "root": str(spec.root_path()),
        "total_rows": sum(s["rows"] for s in sources.values()),
        "sources": sources,
    }
    return build
