"""Rows that already are pairs, under any column names: JSONL/Parquet files and local HF datasets.

`columns` maps schema fields to input columns (query and positive default to columns of the same
name); `task`, `lang`/`query_lang`/`doc_lang` fill fields that have no column or an empty value.
Missing columns are errors naming them and the available ones; a malformed JSON line is an error
with its line number; blank texts are skipped and counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rtrain.data.files import FOLDER_SUFFIXES as SUFFIXES
from rtrain.data.files import pair_files_in
from rtrain.pairs.spec import MAPPABLE, HFDatasetSource, MappedSource, PairFilesSource, PairsSpec
from rtrain.pairs.textio import CorpusError, Pair, Skips, input_file, read_lines, refuse_eval

BATCH = 4096


def needed_columns(src: MappedSource) -> dict[str, str]:
    """schema field -> input column, for every field read from a column."""
    return {f: col for f in MAPPABLE if (col := src.column(f)) is not None}


def check_columns(available: list[str], src: MappedSource, where: str) -> None:
    """CorpusError naming the missing columns, the fields they feed and the columns there are."""
    missing = {f: c for f, c in needed_columns(src).items() if c not in available}
    if missing:
        wanted = ", ".join(f"{c!r} (for {f})" for f, c in missing.items())
        raise CorpusError(
            f"{where}: missing column(s) {wanted}; available: {available}; "
            f"map the right ones with columns: {{query: <column>, positive: <column>, ...}}"
        )


def _text(value: Any, field: str, column: str, where: str) -> str | None:
    """The stripped string, None when blank; CorpusError for a non-string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CorpusError(f"{where}: column {column!r} ({field}) is a {type(value).__name__} {value!r}, expected text")
    return value.strip() or None


def map_row(src: MappedSource, row: dict[str, Any], where: str, skips: Skips) -> Pair | None:
    """One input row as a candidate pair, or None (counted in `skips`) when a text is blank."""
    cols = needed_columns(src)
    values: dict[str, str | None] = {}
    for field in ("query", "positive", "task", "query_lang", "doc_lang", "instruction"):
        column = cols.get(field)
        value = _text(row.get(column), field, column, where) if column else None
        values[field] = value if value is not None else src.default(field)
        if values[field] is None and field != "instruction":
            skips.add(f"blank {field}", where)
            return None
    negatives: list[str] = []
    if "negatives" in cols:
        raw = row.get(cols["negatives"])
        items = [] if raw is None else [raw] if isinstance(raw, str) else list(raw)
        for i, item in enumerate(items):
            text = _text(item, f"negatives[{i}]", cols["negatives"], where)
            if text is None:
                skips.add("blank negative (dropped from its row)", where)
            else:
                negatives.append(text)
    return Pair(
        values["query"] or "",
        values["positive"] or "",
        values["query_lang"] or "",
        values["doc_lang"] or "",
        values["task"] or "",
        where,
        tuple(negatives),
        values["instruction"],
    )


def _list_files(src: PairFilesSource, spec: PairsSpec) -> list[Path]:
    files: list[Path] = []
    for raw in src.files:
        path = input_file(spec, raw, "file or folder")
        if path.is_dir():
            inside = pair_files_in(path)
            if not inside:
                raise CorpusError(f"{path}: folder holds no {'/'.join(SUFFIXES)} files; fix files")
            files.extend(refuse_eval(f) for f in inside)  # a symlink inside the folder may point at an eval set
        elif path.suffix.lower() in SUFFIXES:
            files.append(path)
        else:
            raise CorpusError(f"{path}: not a pair file; expected {' or '.join(SUFFIXES)} (JSON lines or Parquet)")
    return files


def _jsonl_rows(path: Path, src: MappedSource, skips: Skips) -> Iterator[tuple[str, dict[str, Any]]]:
    for lineno, line in enumerate(read_lines(path), start=1):
        where = f"{path}:{lineno}"
        if not line.strip():
            skips.add("blank line", where)
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(
                f"{where}: not valid JSON ({err.msg} at column {err.colno}); each line must be one JSON object: "
                f"fix or delete the line"
            ) from None
        if not isinstance(row, dict):
            raise CorpusError(f"{where}: a JSON {type(row).__name__}, expected an object with the pair's columns")
        check_columns(sorted(row), src, where)
        yield where, row


def _parquet_rows(path: Path, src: MappedSource) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise CorpusError(f"{path}: not a readable Parquet file ({err})") from None
    check_columns(parquet.schema_arrow.names, src, str(path))
    index = 0
    for batch in parquet.iter_batches(batch_size=BATCH, columns=sorted(set(needed_columns(src).values()))):
        for row in batch.to_pylist():
            yield f"{path} row {index}", row
            index += 1


def read_pair_files(src: PairFilesSource, spec: PairsSpec, skips: Skips) -> tuple[list[Pair], list[Path]]:
    """Candidate pairs of every file in order, and the files read."""
    files = _list_files(src, spec)
    pairs: list[Pair] = []
    for path in files:
        rows = _parquet_rows(path, src) if path.suffix.lower() == ".parquet" else _jsonl_rows(path, src, skips)
        count = 0
        for where, row in rows:
            count += 1
            pair = map_row(src, row, where, skips)
            if pair is not None:
                pairs.append(pair)
        if count == 0:
            raise CorpusError(f"{path}: holds no rows; fill it or remove it from the spec")
    return pairs, files


def load_hf(src: HFDatasetSource, path: Path) -> Any:
    """The dataset (one split) at a local path, by `load_from_disk` or `load_dataset`."""
    import datasets

    loader = src.loader
    if loader == "auto":
        saved = path.is_dir() and any((path / f).is_file() for f in ("dataset_dict.json", "state.json"))
        loader = "load_from_disk" if saved else "load_dataset"
    try:
        ds = datasets.load_from_disk(str(path)) if loader == "load_from_disk" else datasets.load_dataset(str(path))
    except (FileNotFoundError, ValueError, OSError, datasets.exceptions.DatasetNotFoundError) as err:
        raise CorpusError(f"{path}: {loader} cannot read it ({err}); check path and loader") from None
    if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        splits = list(ds)
        if src.split is None and len(splits) == 1:
            return ds[splits[0]]
        if src.split not in splits:
            raise CorpusError(f"{path}: holds splits {splits}; set split: to one of them (got {src.split!r})")
        return ds[src.split]
    if src.split is not None:
        raise CorpusError(f"{path}: is a single dataset without splits; remove split: {src.split!r}")
    return ds


def read_hf_dataset(src: HFDatasetSource, spec: PairsSpec, skips: Skips) -> tuple[list[Pair], list[Path]]:
    """Candidate pairs of a local Hugging Face dataset, in row order, and the path read."""
    path = input_file(spec, src.path, "dataset path")
    for inside in path.rglob("*") if path.is_dir() else []:
        refuse_eval(inside)
    ds = load_hf(src, path)
    check_columns(list(ds.column_names), src, str(path))
    columns = sorted(set(needed_columns(src).values()))
    ds = ds.select_columns(columns)
    pairs: list[Pair] = []
    for start in range(0, len(ds), BATCH):
        batch = ds[start : start + BATCH]
        for i in range(len(batch[columns[0]])):
            row = {c: batch[c][i] for c in columns}
            pair = map_row(src, row, f"{path} row {start + i}", skips)
            if pair is not None:
                pairs.append(pair)
    if len(ds) == 0:
        raise CorpusError(f"{path}: the dataset holds no rows")
    return pairs, [path]
