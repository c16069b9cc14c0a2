"""Parallel text -> `bitext` pairs: line-aligned files, or TSV files joined on an id column.

Every aligned sentence yields one pair per directed language pair of the source. Blank sentences,
short TSV lines, duplicate ids and ids missing from a language are skipped and counted once per
input line; line-aligned files whose line counts differ are an error listing every file's count.
"""

from __future__ import annotations

from pathlib import Path

from rtrain.pairs.spec import PairsSpec, ParallelSource
from rtrain.pairs.textio import (
    CorpusError,
    Pair,
    Skips,
    column_index,
    input_file,
    read_lines,
    require_text,
    tsv_header,
    tsv_rows,
)

Aligned = dict[str, dict[str, tuple[str, str]]]  # language -> key -> (text, "file:line")


def _line_aligned(
    src: ParallelSource, files: dict[str, str], spec: PairsSpec, skips: Skips
) -> tuple[list[str], Aligned, list[Path]]:
    paths = {lang: input_file(spec, raw) for lang, raw in files.items()}
    lines = {lang: read_lines(path) for lang, path in paths.items()}
    for lang, path in paths.items():
        require_text(path, lines[lang])
    counts = {lang: len(found) for lang, found in lines.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{lang}={n} ({paths[lang]})" for lang, n in counts.items())
        raise CorpusError(
            f"source {src.name!r}: parallel files are not line-aligned, their line counts differ: {listed}; "
            f"line i of every file must translate the same sentence (or use tsv: with an id column)"
        )
    keys = [str(i) for i in range(next(iter(counts.values())))]
    aligned: Aligned = {}
    for lang, found in lines.items():
        aligned[lang] = {}
        for i, line in enumerate(found):
            where = f"{paths[lang]}:{i + 1}"
            if line.strip():
                aligned[lang][str(i)] = (line.strip(), where)
            else:
                skips.add("blank sentence", where)
    return keys, aligned, list(paths.values())


def _tsv_joined(
    src: ParallelSource, files: dict[str, str], spec: PairsSpec, skips: Skips
) -> tuple[list[str], Aligned, list[Path]]:
    paths = {lang: input_file(spec, raw) for lang, raw in files.items()}
    aligned: Aligned = {}
    keys: list[str] = []
    seen_keys: set[str] = set()
    for lang, path in paths.items():
        header = tsv_header(path) if src.header else None
        id_col = column_index(src.id_column, header, path, "id_column")
        text_col = column_index(src.text_column, header, path, "text_column")
        aligned[lang] = {}
        for lineno, fields in tsv_rows(path, max(id_col, text_col), skips, header=src.header):
            where = f"{path}:{lineno}"
            key, text = fields[id_col].strip(), fields[text_col].strip()
            if not key:
                skips.add("blank id", where)
            elif key in aligned[lang]:
                skips.add(f"duplicate id (first at {aligned[lang][key][1]})", where)
            elif not text:
                skips.add("blank sentence", where)
            else:
                aligned[lang][key] = (text, where)
                if key not in seen_keys:
                    seen_keys.add(key)
                    keys.append(key)
        if not aligned[lang]:
            raise CorpusError(f"{path}: no usable line (see the skipped counts); check id_column/text_column")
    return keys, aligned, list(paths.values())


def read_parallel(src: ParallelSource, spec: PairsSpec, skips: Skips) -> tuple[list[Pair], list[Path]]:
    """Candidate `bitext` pairs in (language pair, line) order, and the files read."""
    if src.files is not None:
        keys, aligned, paths = _line_aligned(src, src.files, spec, skips)
    else:
        keys, aligned, paths = _tsv_joined(src, src.tsv or {}, spec, skips)
    directions = src.language_pairs()
    used = sorted({lang for pair in directions for lang in pair}, key=list(aligned).index)
    if src.tsv is not None:
        for key in keys:
            present = [lang for lang in used if key in aligned[lang]]
            for lang in used if present else []:
                if key not in aligned[lang]:  # say where the id does occur, so the gap can be found
                    skips.add(f"id missing from the {lang} file", f"{aligned[present[0]][key][1]} (id {key})")
    pairs: list[Pair] = []
    for q_lang, d_lang in directions:
        queries, docs = aligned[q_lang], aligned[d_lang]
        for key in keys:
            if key in queries and key in docs:
                text, where = queries[key]
                pairs.append(Pair(text, docs[key][0], q_lang, d_lang, src.task, where))
    return pairs, paths
