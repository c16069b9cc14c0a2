"""What every corpus reader shares: the candidate pair, skip bookkeeping, file checks and text/TSV reading.

Readers raise `CorpusError` for input they cannot use (naming `file:line` and the fix) and count
everything they leave out in `Skips` (reason -> count, plus the first few places).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rtrain.errors import UserError
from rtrain.pairs.spec import PairsSpec
from rtrain.pairs.spec_base import eval_folder_in, eval_guard_message

MAX_EXAMPLES = 3


class CorpusError(UserError, ValueError):
    """A corpus that cannot be turned into pairs; the message names the file (and line) and the fix."""


@dataclass(frozen=True, slots=True)
class Pair:
    """One candidate row before ids, dedup and sampling; `where` is its place in the input (file:line)."""

    query: str
    positive: str
    query_lang: str
    doc_lang: str
    task: str
    where: str
    negatives: tuple[str, ...] = ()
    instruction: str | None = None


@dataclass
class Skips:
    """Counts of left-out input items per reason, with the first `MAX_EXAMPLES` places of each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, where: str, n: int = 1) -> None:
        self.counts[reason] += n
        places = self.examples.setdefault(reason, [])
        if len(places) < MAX_EXAMPLES:
            places.append(where)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, dict[str, object]]:
        """{reason: {"count": n, "examples": [...]}} sorted by reason (for the manifest)."""
        return {r: {"count": self.counts[r], "examples": self.examples.get(r, [])} for r in sorted(self.counts)}


def refuse_eval(path: Path) -> Path:
    """`path` unless it, or what it resolves to through any symlink, lies in an eval set; CorpusError then.

    Every file a reader opens goes through here, also each file found inside a folder."""
    real = path.resolve()
    folder = eval_folder_in(real) or eval_folder_in(path)
    if folder is not None:
        raise CorpusError(eval_guard_message(real, folder))
    return path


def input_file(spec: PairsSpec, raw: str, what: str = "file") -> Path:
    """The resolved path of a spec path; CorpusError if it is missing or lies in an eval set."""
    path = refuse_eval(spec.resolve_path(raw))
    if not path.exists():
        raise CorpusError(
            f"{path}: no such {what} (spec path {raw!r} under root {spec.root_path()}); fix the path, or set "
            f"root: in the spec (or $RTRAIN_SHARED_DATA) to the folder it is relative to"
        )
    return path


def read_text(path: Path) -> str:
    """A UTF-8 file's text; CorpusError with the line of the first undecodable byte."""
    if path.is_dir():
        raise CorpusError(f"{path}: is a folder; name a file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not UTF-8 ({err.reason}); convert the file to UTF-8") from None


def read_lines(path: Path) -> list[str]:
    """The file's lines without line endings (\\n or \\r\\n); only \\n splits, so U+2028 stays inside a line."""
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def require_text(path: Path, lines: list[str]) -> None:
    """CorpusError when a file holds no non-blank line at all."""
    if not any(line.strip() for line in lines):
        raise CorpusError(
            f"{path}: holds no text ({len(lines)} line(s), all blank); fill it or remove it from the spec"
        )


def column_index(column: int | str, header: list[str] | None, path: Path, key: str) -> int:
    """A 0-based column index from an index or a header name; CorpusError naming the available columns."""
    if isinstance(column, int):
        return column
    if header is None or column not in header:
        raise CorpusError(f"{path}: no column {column!r} for {key}; the header has {header}; fix {key}")
    return header.index(column)


def tsv_rows(path: Path, needed: int, skips: Skips, header: bool = False) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each TSV line with more than `needed` fields; short lines are skipped and counted.

    Fields are split on tabs with no quoting (quotes are text).
    """
    lines = read_lines(path)
    require_text(path, lines)
    start = 1 if header else 0
    for lineno, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            skips.add("blank line", f"{path}:{lineno}")
            continue
        fields = line.split("\t")
        if len(fields) <= needed:
            skips.add(f"too few columns (need {needed + 1})", f"{path}:{lineno}")
            continue
        yield lineno, fields


def tsv_header(path: Path) -> list[str]:
    """The first line of a TSV file split on tabs."""
    lines = read_lines(path)
    require_text(path, lines)
    return lines[0].split("\t")
