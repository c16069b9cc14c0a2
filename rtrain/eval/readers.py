"""Readers for local evaluation data: FLORES (SIB-200 subset), BEIR folders, parallel files, pairs,
plus (re-exported from :mod:`rtrain.eval.readers_mlqa_sts`) MLQA-R, STS-B multi-MT and SemEval-2017 STS.

Nothing here touches the network. No reader drops a row silently: malformed / duplicate / unaligned
rows are counted and reported in one ``logging`` warning per file (with the first few line numbers),
or raise at the first one with ``strict=True``.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rtrain.data.schema import row_problems
from rtrain.eval.readers_mlqa_sts import (  # noqa: F401  (re-exported: this module is the readers' entry point)
    STS17_TRACKS,
    RetrievalData,
    STSPairs,
    default_data_root,
    mlqa_languages,
    read_mlqa,
    read_mlqa_cross,
    read_sts17,
    read_stsb,
    stsb_languages,
)
from rtrain.eval.skips import Skips as _Skips
from rtrain.eval.skips import existing_dir as _existing_dir

logger = logging.getLogger(__name__)

FLORES_DIR = "sib200_flores_subset"
FLORES_SPLITS = ("train", "dev", "test")


# ------------------------------------------------------------------------------------------------
# FLORES / SIB-200
# ------------------------------------------------------------------------------------------------


def default_flores_root() -> Path:
    """``sib200_flores_subset`` in the shared-data folder (``$RTRAIN_SHARED_DATA``, else ``<repo>/../shared/data``)."""
    return default_data_root() / FLORES_DIR


def flores_codes(root: str | Path | None = None) -> list[str]:
    """FLORES codes (``deu_Latn``, ...) that have a folder of split files under ``root``."""
    folder = _existing_dir(root or default_flores_root(), "FLORES")
    return sorted(
        p.name for p in folder.iterdir() if p.is_dir() and any((p / f"{s}.tsv").exists() for s in FLORES_SPLITS)
    )


def read_flores_file(path: str | Path, *, strict: bool = False) -> dict[str, str]:
    """``{index_id: text}`` from one SIB-200 TSV (header ``index_id  category  text``, quoting off)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FLORES file {path.resolve()} does not exist")
    skips = _Skips(path, strict)
    out: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or "index_id" not in header or "text" not in header:
            raise ValueError(f"{path}: header is {header!r}; expected tab-separated 'index_id  category  text'")
        id_col, text_col = header.index("index_id"), header.index("text")
        total = 0
        for line_no, fields in enumerate(reader, start=2):
            if not fields:
                continue
            total += 1
            if len(fields) != len(header):
                skips.add(f"line {line_no}", f"{len(fields)} fields, expected {len(header)}")
            elif not fields[text_col].strip():
                skips.add(f"line {line_no}", "empty text")
            elif fields[id_col] in out:
                skips.add(f"line {line_no}", f"duplicate index_id {fields[id_col]!r}")
            else:
                out[fields[id_col]] = fields[text_col]
    skips.report(total)
    return out


def read_flores(
    codes: Sequence[str],
    *,
    root: str | Path | None = None,
    split: str | Sequence[str] = "dev",
    target: str = "eng_Latn",
    limit: int | None = None,
    strict: bool = False,
) -> dict[str, tuple[list[str], list[str]]]:
    """``{"X-eng_Latn": (X sentences, English sentences)}`` aligned by ``index_id``.

    ``split`` is one of train / dev / test or several (concatenated in the order given); ``limit``
    keeps the first ``limit`` aligned sentences (source file order). Sentences present on only one
    side are reported as skipped. A code equal to ``target`` is skipped with a warning.
    """
    if isinstance(codes, str):
        codes = [codes]
    if not codes:
        raise ValueError("no FLORES codes given; pass e.g. ['deu_Latn', 'hin_Deva'] (see flores_codes())")
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit} must be a positive number of sentences (or None for all)")
    splits = [split] if isinstance(split, str) else list(split)
    bad = [s for s in splits if s not in FLORES_SPLITS]
    if bad or not splits:
        raise ValueError(f"split={split!r}; choose from {FLORES_SPLITS} (or a list of them)")
    folder = _existing_dir(root or default_flores_root(), "FLORES")
    available = flores_codes(folder)
    unknown = [c for c in [*codes, target] if c not in available]
    if unknown:
        raise FileNotFoundError(f"FLORES code(s) {unknown} not found under {folder}; available: {available}")

    def load(code: str) -> dict[str, str]:
        merged: dict[str, str] = {}
        for s in splits:
            merged.update(
                {f"{s}:{k}": v for k, v in read_flores_file(folder / code / f"{s}.tsv", strict=strict).items()}
            )
        return merged

    tgt = load(target)
    pairs: dict[str, tuple[list[str], list[str]]] = {}
    for code in codes:
        if code == target:
            logger.warning("FLORES code %s is the target language; no %s-%s pair is built", code, code, target)
            continue
        src = load(code)
        skips = _Skips(folder / code, strict)
        for key in src.keys() - tgt.keys():
            skips.add(f"index_id {key}", f"no {target} sentence")
        for key in tgt.keys() - src.keys():
            skips.add(f"index_id {key}", f"no {code} sentence")
        skips.report(len(src.keys() | tgt.keys()))
        ids = [k for k in src if k in tgt][:limit]
        pairs[f"{code}-{target}"] = ([src[k] for k in ids], [tgt[k] for k in ids])
    return pairs


# ------------------------------------------------------------------------------------------------
# BEIR
# ------------------------------------------------------------------------------------------------


BeirData = RetrievalData  # a BEIR task is a RetrievalData: corpus, queries, qrels, skipped rows per file


def _read_jsonl_texts(path: Path, strict: bool, with_title: bool) -> tuple[dict[str, str], int]:
    if not path.is_file():
        raise FileNotFoundError(f"{path.resolve()} does not exist; a BEIR folder needs corpus.jsonl and queries.jsonl")
    skips = _Skips(path, strict)
    out: dict[str, str] = {}
    total = 0
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            total += 1
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                skips.add(f"line {line_no}", f"invalid JSON ({err.msg})")
                continue
            if not isinstance(obj, dict) or "_id" not in obj or not isinstance(obj.get("text"), str):
                skips.add(f"line {line_no}", "needs '_id' and a string 'text'")
                continue
            title = obj.get("title") if with_title else None
            text = f"{title} {obj['text']}".strip() if isinstance(title, str) and title else obj["text"]
            key = str(obj["_id"])
            if not text.strip():
                skips.add(f"line {line_no}", f"empty text for id {key!r}")
            elif key in out:
                skips.add(f"line {line_no}", f"duplicate id {key!r}")
            else:
                out[key] = text
    return out, skips.report(total)


def _read_qrels(path: Path, strict: bool) -> tuple[dict[str, dict[str, int]], int]:
    skips = _Skips(path, strict)
    qrels: dict[str, dict[str, int]] = {}
    total = 0
    with path.open(encoding="utf-8", newline="") as f:
        for line_no, fields in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not fields or not "".join(fields).strip():
                continue
            if line_no == 1 and not fields[-1].strip().lstrip("-").isdigit():
                continue  # header, e.g. "query-id  corpus-id  score"
            total += 1
            if len(fields) not in (3, 4):  # BEIR: qid doc score; TREC: qid 0 doc score
                skips.add(f"line {line_no}", f"{len(fields)} fields, expected 'query-id  corpus-id  score'")
                continue
            qid, doc_id, grade = fields[0].strip(), fields[-2].strip(), fields[-1].strip()
            try:
                value = int(grade)
            except ValueError:
                skips.add(f"line {line_no}", f"score {grade!r} is not an integer")
                continue
            qrels.setdefault(qid, {})[doc_id] = value
    return qrels, skips.report(total)


def read_beir(folder: str | Path, split: str = "test", *, strict: bool = False) -> BeirData:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (or ``qrels.tsv``).

    Document text is ``title + " " + text`` as in mteb. Raises on a missing folder/file, an empty
    corpus, empty qrels, or qrels naming query / doc ids that are not in the files.
    """
    root = _existing_dir(folder, "BEIR")
    corpus, skipped_docs = _read_jsonl_texts(root / "corpus.jsonl", strict, with_title=True)
    if not corpus:
        raise ValueError(f"{root / 'corpus.jsonl'} has no usable documents; the corpus is empty")
    queries, skipped_queries = _read_jsonl_texts(root / "queries.jsonl", strict, with_title=False)
    candidates = [root / "qrels" / f"{split}.tsv", root / "qrels.tsv"]
    qrels_path = next((p for p in candidates if p.is_file()), None)
    if qrels_path is None:
        raise FileNotFoundError(f"no qrels for split {split!r} in {root}: tried {[str(p) for p in candidates]}")
    qrels, skipped_qrels = _read_qrels(qrels_path, strict)
    if not qrels:
        raise ValueError(f"{qrels_path} has no qrels rows; expected 'query-id  corpus-id  score' lines")
    unknown_q = sorted(q for q in qrels if q not in queries)
    unknown_d = sorted({d for docs in qrels.values() for d in docs if d not in corpus})
    for ids, what, where in ((unknown_q, "query", "queries.jsonl"), (unknown_d, "doc", "corpus.jsonl")):
        if ids:
            shown = ", ".join(repr(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise ValueError(
                f"{qrels_path} names {len(ids)} {what} id(s) not in {where}: [{shown}]; fix the qrels or the folder"
            )
    return BeirData(
        corpus,
        queries,
        qrels,
        skipped={"corpus.jsonl": skipped_docs, "queries.jsonl": skipped_queries, qrels_path.name: skipped_qrels},
    )


# ------------------------------------------------------------------------------------------------
# parallel text
# ------------------------------------------------------------------------------------------------


def read_parallel_tsv(
    path: str | Path, *, src_col: int = 0, tgt_col: int = 1, header: bool = False, strict: bool = False
) -> tuple[list[str], list[str]]:
    """``(sources, targets)`` from one TSV with a source and a target column (quoting off)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parallel TSV {path.resolve()} does not exist")
    skips = _Skips(path, strict)
    src: list[str] = []
    tgt: list[str] = []
    total = 0
    with path.open(encoding="utf-8", newline="") as f:
        for line_no, fields in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if (header and line_no == 1) or not fields:
                continue
            total += 1
            if len(fields) <= max(src_col, tgt_col):
                skips.add(f"line {line_no}", f"{len(fields)} field(s), need column {max(src_col, tgt_col)}")
            elif not fields[src_col].strip() or not fields[tgt_col].strip():
                skips.add(f"line {line_no}", "empty source or target")
            else:
                src.append(fields[src_col])
                tgt.append(fields[tgt_col])
    skips.report(total)
    if not src:
        raise ValueError(f"{path} has no usable sentence pairs")
    return src, tgt


def read_parallel_files(
    src_path: str | Path, tgt_path: str | Path, *, strict: bool = False
) -> tuple[list[str], list[str]]:
    """``(sources, targets)`` from two line-aligned text files (one sentence per line).

    Unequal line counts raise; a line pair with an empty side is skipped (both sides, so alignment holds).
    """
    paths = [Path(src_path), Path(tgt_path)]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"parallel file {p.resolve()} does not exist")
    src_lines, tgt_lines = (p.read_text(encoding="utf-8").splitlines() for p in paths)
    if len(src_lines) != len(tgt_lines):
        raise ValueError(
            f"parallel files are not aligned: {paths[0]} has {len(src_lines)} lines but "
            f"{paths[1]} has {len(tgt_lines)}; they must have one sentence per line, same count"
        )
    skips = _Skips(paths[0], strict)
    src: list[str] = []
    tgt: list[str] = []
    for line_no, (s, t) in enumerate(zip(src_lines, tgt_lines), start=1):
        if not s.strip() or not t.strip():
            skips.add(f"line {line_no}", "empty source or target")
        else:
            src.append(s)
            tgt.append(t)
    skips.report(len(src_lines))
    if not src:
        raise ValueError(f"{paths[0]} / {paths[1]} have no usable sentence pairs")
    return src, tgt


# ------------------------------------------------------------------------------------------------
# pair-schema rows
# ------------------------------------------------------------------------------------------------


def check_pair_rows(rows: Sequence[Mapping[str, Any]], source: str = "rows") -> list[dict[str, Any]]:
    """Validate pair-schema rows (``rtrain.data.schema.row_problems``); raise listing the bad ones."""
    if not rows:
        raise ValueError(f"{source} has no pair rows; an evaluation task needs at least one")
    bad = [(i, row.get("id"), row_problems(dict(row))) for i, row in enumerate(rows)]
    bad = [b for b in bad if b[2]]
    if bad:
        shown = "; ".join(f"row {i} (id={rid!r}): {', '.join(p)}" for i, rid, p in bad[:3])
        raise ValueError(f"{source}: {len(bad)} of {len(rows)} rows break the pair schema: {shown}")
    return [dict(r) for r in rows]


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    """Pair-schema rows from a ``.parquet`` or ``.jsonl`` file, validated."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file {path.resolve()} does not exist; give a .parquet or .jsonl pairs file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    elif path.suffix in (".jsonl", ".json"):
        rows = []
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{path}: line {line_no} is not valid JSON ({err.msg})") from err
    else:
        raise ValueError(f"pairs file {path} has suffix {path.suffix!r}; use .parquet or .jsonl")
    return check_pair_rows(rows, source=str(path))
