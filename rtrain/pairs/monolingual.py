"""Monolingual sentences -> self-supervised pairs: inverse cloze (ICT) and independent cropping.

Sentences are grouped into documents (TSV: a change of the document column's key; text: a blank
line), documents into blocks of at most `window` consecutive sentences (sizes as even as possible).

- ICT (ORQA, Lee et al. 2019): each sentence of a block is a query; its positive is the block's
  other sentences, with the sentence itself left in place with probability 1 - `ict_remove_prob`
  so the model also learns lexical matching.
- crop (Contriever, Izacard et al. 2022): two spans drawn independently (length a `crop_ratio`
  share of the block's sentences, random start) from the same block form a positive pair; with
  `crop_unit: words` each line is a document cropped by words (characters in `char_langs`).

Blank and too-short sentences, one-sentence blocks and identical crops are skipped and counted.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

from rtrain.pairs.spec import MonolingualSource, PairsSpec
from rtrain.pairs.spec_base import as_paths
from rtrain.pairs.textio import CorpusError, Pair, Skips, input_file, read_lines, require_text, tsv_rows

Sentence = tuple[str, str]  # (text, "file:line")


def _documents(path: Path, src: MonolingualSource, skips: Skips) -> list[list[Sentence]]:
    """The file's documents as lists of kept sentences, in file order."""
    fmt = src.format if src.format != "auto" else ("tsv" if path.suffix.lower() == ".tsv" else "txt")
    pattern = re.compile(src.document_pattern) if src.document_pattern else None
    docs: list[list[Sentence]] = [[]]
    previous: str | None = None

    def keep(text: str, where: str) -> None:
        text = text.strip()
        if not text:
            skips.add("blank sentence", where)
        elif len(text) < src.min_chars:
            skips.add(f"sentence shorter than min_chars={src.min_chars}", where)
        else:
            docs[-1].append((text, where))

    if fmt == "tsv":
        needed = max(src.text_column, src.document_column if src.document_column is not None else 0)
        for lineno, fields in tsv_rows(path, needed, skips):
            if src.document_column is not None:
                key = fields[src.document_column]
                match = pattern.match(key) if pattern else None
                if match:
                    key = match.group(1) if match.groups() else match.group(0)
                if previous is not None and key != previous and docs[-1]:
                    docs.append([])
                previous = key
            keep(fields[src.text_column], f"{path}:{lineno}")
    else:
        lines = read_lines(path)
        require_text(path, lines)
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                if docs[-1]:
                    docs.append([])
                continue
            keep(line, f"{path}:{lineno}")
    docs = [doc for doc in docs if doc]
    if not docs:
        raise CorpusError(f"{path}: no sentence of at least min_chars={src.min_chars} characters; check the file")
    return docs


def blocks_of(doc: list[Sentence], window: int) -> list[list[Sentence]]:
    """Consecutive blocks of at most `window` sentences, sizes differing by at most one."""
    count = math.ceil(len(doc) / window)
    size, extra = divmod(len(doc), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        out.append(doc[start:end])
        start = end
    return out


def _ict(block: list[Sentence], lang: str, src: MonolingualSource, rng: random.Random, join: str) -> list[Pair]:
    pairs = []
    for i, (text, where) in enumerate(block):
        remove = rng.random() < src.ict_remove_prob
        context = [s for j, (s, _) in enumerate(block) if j != i or not remove]
        pairs.append(Pair(text, join.join(context), lang, lang, src.task, f"{where} (ict)"))
    return pairs


def _crops(
    units: list[str], join: str, where: str, lang: str, src: MonolingualSource, rng: random.Random, skips: Skips
) -> list[Pair]:
    """`crops_per_block` pairs of two independent random spans of `units` (sentences, words or characters)."""
    n = len(units)
    low = max(1, round(src.crop_ratio[0] * n))
    high = max(low, round(src.crop_ratio[1] * n))
    pairs = []
    for _ in range(src.crops_per_block):
        spans = []
        for _side in range(2):
            length = rng.randint(low, high)
            spans.append((rng.randint(0, n - length), length))
        if spans[0] == spans[1]:
            skips.add("identical crops (both spans the same)", where)
            continue
        (s1, l1), (s2, l2) = spans
        query, positive = join.join(units[s1 : s1 + l1]).strip(), join.join(units[s2 : s2 + l2]).strip()
        pairs.append(Pair(query, positive, lang, lang, src.task, where))
    return pairs


def _word_crops(sentence: Sentence, lang: str, src: MonolingualSource, rng: random.Random, skips: Skips) -> list[Pair]:
    text, where = sentence
    units, join = (list(text), "") if lang in src.char_langs else (text.split(), " ")
    if len(units) < src.min_crop_units:
        skips.add(f"line shorter than min_crop_units={src.min_crop_units} (not cropped)", where)
        return []
    return _crops(units, join, f"{where} (crop)", lang, src, rng, skips)


def read_monolingual(src: MonolingualSource, spec: PairsSpec, skips: Skips) -> tuple[list[Pair], list[Path]]:
    """ICT and/or crop candidate pairs for every file, in file and block order, and the files read."""
    rng = random.Random(src.seed)
    pairs: list[Pair] = []
    paths: list[Path] = []
    for lang, raw in src.files.items():
        join = src.joiner_by_lang.get(lang, src.joiner)
        for one in as_paths(raw):
            path = input_file(spec, one)
            paths.append(path)
            for doc in _documents(path, src, skips):
                for block in blocks_of(doc, src.window):
                    if src.mode in ("crop", "both") and src.crop_unit == "words":
                        for sentence in block:
                            pairs.extend(_word_crops(sentence, lang, src, rng, skips))
                    if len(block) < 2:
                        if src.mode == "ict" or src.crop_unit == "sentences":
                            skips.add("block of one sentence (no context to pair with)", block[0][1])
                        continue
                    if src.mode in ("ict", "both"):
                        pairs.extend(_ict(block, lang, src, rng, join))
                    if src.mode in ("crop", "both") and src.crop_unit == "sentences":
                        units = [text for text, _ in block]
                        pairs.extend(_crops(units, join, f"{block[0][1]} (crop)", lang, src, rng, skips))
    return pairs, paths
