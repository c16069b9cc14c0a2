"""Find pair files and validate every row on the driver, before any worker starts.

Errors name the file and line (JSONL) or row (Parquet) and say how to fix them; the scan also
counts rows per task and language, which the trainer uses to size epochs and report the data.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rtrain.data.schema import PAIR_SCHEMA, REQUIRED_STR, row_problems
from rtrain.errors import UserError, problems_message

SUFFIXES = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}
FOLDER_SUFFIXES = (".parquet", ".jsonl")
MAX_LISTED = 20


class PairDataError(UserError, ValueError):
    """Pair files that cannot be trained on; the message lists where and why."""


@dataclass
class PairStats:
    """What a validation scan found."""

    rows: int = 0
    files: list[str] = field(default_factory=list)
    by_task: Counter = field(default_factory=Counter)
    by_lang: Counter = field(default_factory=Counter)
    min_negatives: int | None = None

    def summary(self) -> str:
        tasks = ", ".join(f"{k}={v}" for k, v in sorted(self.by_task.items()))
        langs = ", ".join(f"{k}={v}" for k, v in sorted(self.by_lang.items()))
        return f"{self.rows} pairs in {len(self.files)} file(s); tasks: {tasks}; query languages: {langs}"


def file_format(path: Path) -> str:
    """'parquet' or 'jsonl' from the suffix, or a PairDataError naming the file."""
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise PairDataError(f"{path}: not a pair file; expected one of {sorted(SUFFIXES)} (Parquet or JSONL)")
    return fmt


def pair_files_in(folder: Path) -> list[Path]:
    """The .parquet/.jsonl files under `folder`, sorted; a stage's manifest.json next to its pairs is not
    data and, as in Arrow and Spark datasets, nothing under a name starting with "_" or "." is (e.g. _heldout/)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in FOLDER_SUFFIXES
        and p.is_file()
        and not any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts)
    )


def list_pair_files(paths: list[str]) -> list[Path]:
    """Files named directly, plus the Parquet/JSONL files inside named folders, sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            inside = pair_files_in(path)
            if not inside:
                raise PairDataError(f"{path}: folder holds no .parquet/.jsonl files; check data.train_files")
            found.extend(inside)
        elif path.is_file():
            file_format(path)
            found.append(path)
        else:
            raise PairDataError(f"{path}: no such file or folder; check data.train_files")
    return found


def iter_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(location, row, parse error) for each row of a pair file; location is 'file:line' or 'file row N'."""
    if file_format(path) == "jsonl":
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                where = f"{path}:{lineno}"
                try:
                    line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as err:
                    yield where, None, f"not UTF-8 text ({err.reason} at byte {err.start}); save the file as UTF-8"
                    continue
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    yield where, None, f"not valid JSON ({err.msg}); each line must be one JSON object"
                    continue
                if not isinstance(row, dict):
                    yield where, None, f"a JSON {type(row).__name__}, expected an object with the pair fields"
                    continue
                yield where, row, None
        return
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        yield f"{path}", None, f"not a readable Parquet file ({err})"
        return
    missing = [c for c in REQUIRED_STR + ("negatives",) if c not in parquet.schema_arrow.names]
    if missing:
        yield f"{path}", None, f"missing column(s) {missing}; the pair schema is {PAIR_SCHEMA.names}"
        return
    types = {c: parquet.schema_arrow.field(c).type for c in REQUIRED_STR}
    wrong = [f"{c} ({t})" for c, t in types.items() if not (pa.types.is_string(t) or pa.types.is_large_string(t))]
    if wrong:
        yield f"{path}", None, f"column(s) {', '.join(wrong)} must hold strings: write them as string columns"
        return
    index = 0
    for batch in parquet.iter_batches(batch_size=8192):
        for row in batch.to_pylist():
            yield f"{path} row {index}", row, None
            index += 1


def validate_pair_files(paths: list[str], negatives_per_query: int) -> tuple[list[Path], PairStats]:
    """Scan every row; raise one PairDataError listing the problems (first 20 and the total)."""
    files = list_pair_files(paths)
    stats = PairStats(files=[str(f) for f in files])
    problems: list[str] = []
    short_rows = 0
    seen_ids: dict[str, str] = {}
    for path in files:
        for where, row, error in iter_rows(path):
            if error is not None or row is None:
                problems.append(f"{where}: {error}")
                continue
            found = row_problems(row)
            if not found:
                negatives = list(row.get("negatives") or [])
                if len(negatives) < negatives_per_query:
                    short_rows += 1
                    if short_rows <= 3:
                        found.append(
                            f"has {len(negatives)} negatives but loss.negatives_per_query={negatives_per_query}"
                        )
                first = seen_ids.setdefault(row["id"], where)
                if first != where:
                    found.append(f"id {row['id']!r} repeats the id at {first}; ids must be unique")
            if found:
                problems.extend(f"{where}: {p}" for p in found)
                continue
            stats.rows += 1
            stats.by_task[row["task"]] += 1
            stats.by_lang[row["query_lang"]] += 1
            n = len(list(row.get("negatives") or []))
            stats.min_negatives = n if stats.min_negatives is None else min(stats.min_negatives, n)
    if short_rows:
        problems.append(
            f"{short_rows} row(s) have fewer than loss.negatives_per_query={negatives_per_query} negatives: "
            f"lower loss.negatives_per_query (the fewest any row has is {stats.min_negatives or 0}) "
            f"or mine more negatives"
        )
    if problems:
        where = "" if len(problems) == 1 else "the pair files"  # one problem names its own file and line
        raise PairDataError(problems_message(where, problems, limit=MAX_LISTED))
    if stats.rows == 0:
        raise PairDataError(f"no training pairs in {stats.files}; the files are empty")
    return files, stats
