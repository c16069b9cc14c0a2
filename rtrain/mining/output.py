"""Write mined rows (one Parquet file per input file); delete only what an earlier mining run wrote, once the new rows
are ready, and refuse folders mining did not write."""

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


def check_out(out: Path) -> list[str]:
    """Refuse an `--out` mining cannot use, before any model loads or file changes.

    Returns the file names an earlier `rtrain mine` run wrote there (to replace once this run's rows
    are ready); any other content, a manifest naming a path outside the folder, or a file at `out`
    is refused.
    """
    if out.exists() and not out.is_dir():
        raise MiningError(f"--out {out} is a file; name a folder (a new one, or one rtrain mine wrote)")
    if not out.is_dir():
        return []
    previous: dict[str, Any] = {}
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            previous = {}
    ours = isinstance(previous, dict) and previous.get("kind") == MANIFEST_KIND
    names = [str(n) for n in previous.get("outputs", [])] if ours else []
    outside = [n for n in names if Path(n).name != n or n in ("", ".", "..") or n == MANIFEST]
    if outside:
        raise MiningError(
            f"{manifest}: outputs entry {outside[0]!r} is not a file name inside {out}; rtrain mine deletes only "
            "the plain file names it wrote: fix or remove that manifest, or choose a new --out folder"
        )
    known = set(names) | ({MANIFEST} if ours else set())
    leftover = sorted(p.name for p in out.iterdir() if p.name not in known)
    if leftover:
        raise MiningError(
            f"output folder {out} holds files rtrain mine did not write ({leftover[:5]}); "
            f"choose an empty or new --out folder"
        )
    return names


def clear_previous(out: Path, names: list[str]) -> None:
    """Delete an earlier run's outputs (names checked by `check_out`): the manifest first, so a crash leaves
    no manifest claiming outputs that are gone."""
    (out / MANIFEST).unlink(missing_ok=True)
    for name in names:
        (out / name).unlink(missing_ok=True)


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
