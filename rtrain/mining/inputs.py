"""Read what mining needs: validated pair rows per input file, and optional extra corpus texts.

Pair files go through :func:`rtrain.data.files.validate_pair_files`, so a bad row fails with its
file and line before any model loads. Corpus files are ``.txt`` (one text per line), or
``.jsonl`` / ``.parquet`` with a text column (pair files: their ``positive`` column by default).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rtrain.data.files import iter_rows, validate_pair_files
from rtrain.data.schema import normalize_row
from rtrain.errors import UserError


class MiningError(UserError, ValueError):
    """Inputs or settings mining cannot use; the message names the file, key or value and the fix."""


@dataclass
class PairFile:
    """One input pair file and its rows (every schema column present)."""

    path: Path
    rows: list[dict[str, Any]]


def read_pair_files(paths: list[str]) -> list[PairFile]:
    """Every row of the pair files / folders in `paths`, validated (PairDataError names file:line)."""
    missing = [p for p in paths if not Path(p).expanduser().exists()]
    if missing:
        raise MiningError(
            f"pair input(s) {missing} do not exist; name existing pair files (.parquet/.jsonl) or folders holding them"
        )
    files, _ = validate_pair_files(paths, negatives_per_query=0)
    out = []
    for path in files:
        rows = [normalize_row(row) for _, row, _ in iter_rows(path) if row is not None]
        out.append(PairFile(path, rows))
    return out


@dataclass
class Corpus:
    """Extra candidate texts and their languages (None where a file has no language column)."""

    texts: list[str]
    langs: list[str | None]
    files: list[str]


def _columns_of(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows and column names of a JSONL or Parquet corpus file (JSON errors name the line)."""
    if path.suffix.lower() == ".parquet":
        table = pq.read_table(path)
        return table.to_pylist(), table.column_names
    rows: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise MiningError(
                    f"{path}:{lineno}: not valid JSON ({err.msg}); each line must be one JSON object"
                ) from None
            if not isinstance(row, dict):
                raise MiningError(f"{path}:{lineno}: a JSON {type(row).__name__}, expected an object")
            rows.append(row)
            names.update(dict.fromkeys(row))
    return rows, list(names)


def read_corpus(paths: list[str], column: str | None, lang_column: str | None) -> Corpus:
    """Texts (and languages) of every corpus file; errors name the file, line or column and the fix."""
    corpus = Corpus([], [], [])
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise MiningError(f"corpus file {path} does not exist; fix corpus= (a .txt, .jsonl or .parquet file)")
        suffix = path.suffix.lower()
        corpus.files.append(str(path))
        if suffix == ".txt":
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            texts = [t for t in lines if t]
            if lang_column is not None:
                raise MiningError(
                    f"corpus file {path} is plain text: it has no column {lang_column!r}; "
                    f"unset corpus_lang_column or use a .jsonl/.parquet corpus"
                )
            corpus.texts.extend(texts)
            corpus.langs.extend([None] * len(texts))
            continue
        if suffix not in (".jsonl", ".json", ".parquet"):
            raise MiningError(f"corpus file {path}: unknown format {suffix!r}; use .txt, .jsonl or .parquet")
        rows, names = _columns_of(path)
        is_pairs = "positive" in names and "query" in names
        text_col = column or ("positive" if is_pairs else "text")
        lang_col = lang_column or ("doc_lang" if is_pairs else ("lang" if "lang" in names else None))
        if text_col not in names:
            raise MiningError(
                f"corpus file {path} has no column {text_col!r} (columns: {names}); "
                f"set corpus_column to the text column"
            )
        if lang_col is not None and lang_col not in names:
            raise MiningError(
                f"corpus file {path} has no column {lang_col!r} (columns: {names}); "
                f"set corpus_lang_column to its language column"
            )
        for i, row in enumerate(rows):
            text = row.get(text_col)
            where = f"{path}:{i + 1}" if suffix != ".parquet" else f"{path} row {i}"
            if not isinstance(text, str) or not text.strip():
                raise MiningError(f"{where}: {text_col!r} is {text!r}; every corpus row needs a non-empty string")
            lang = row.get(lang_col) if lang_col else None
            if lang_col and (not isinstance(lang, str) or not lang.strip()):
                raise MiningError(f"{where}: {lang_col!r} is {lang!r}; give a language code or drop corpus_lang_column")
            corpus.texts.append(text)
            corpus.langs.append(lang)
    return corpus
