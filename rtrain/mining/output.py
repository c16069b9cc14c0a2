"""Write mined rows (one Parquet file per input file) and refuse to clobber folders mining did not write."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rtrain.data.schema import rows_to_table
from rtrain.mining.inputs import MiningError

MANIFEST = "manifest.json"
MANIFEST_KIND = "rtrain-mine"


def prepare_out(out: Path) -> None:
    """Make `out`; if it holds an earlier mining run, delete that run's files; refuse any other content."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    previous: dict[str, Any] = {}
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text())
        except json.JSONDecodeError:
            previous = {}
    ours = previous.get("kind") == MANIFEST_KIND
    if ours:
        for name in previous.get("outputs", []):
            (out / name).unlink(missing_ok=True)
        manifest.unlink()
    leftover = sorted(p.name for p in out.iterdir())
    if leftover:
        raise MiningError(
            f"output folder {out} holds files rtrain mine did not write ({leftover[:5]}); "
            f"choose an empty or new --out folder"
        )


def output_names(inputs: list[Path]) -> list[str]:
    """`<stem>.parquet` per input file, with `-2`, `-3` ... when stems repeat."""
    names: list[str] = []
    for path in inputs:
        stem = path.stem if path.suffix.lower() in (".parquet", ".jsonl", ".json") else path.name
        name, i = f"{stem}.parquet", 2
        while name in names:
            name, i = f"{stem}-{i}.parquet", i + 1
        names.append(name)
    return names


def write_pairs(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows of the pair schema as Parquet, written to a temporary name and renamed."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(rows_to_table(rows), tmp)
    os.replace(tmp, path)


def write_manifest(out: Path, manifest: dict[str, Any]) -> Path:
    """`manifest.json` (written last: its presence means the outputs are complete)."""
    path = out / MANIFEST
    path.write_text(json.dumps({"kind": MANIFEST_KIND, **manifest}, indent=2, default=str) + "\n")
    return path
