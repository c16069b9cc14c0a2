"""Readers for MLQA-R (question -> paragraph retrieval), STS-B multi-MT and SemEval-2017 STS.

Import them from :mod:`rtrain.eval.readers` (which re-exports them). Layout expected under the data
root (``$RTRAIN_SHARED_DATA``, else ``<repo>/../shared/data``; see that folder's README):

* ``mlqa_r_dev/mlqa-r-dev.<lang>.json``: SQuAD v1 JSON (``data[].paragraphs[].{context, qas[]}``).
  The question ids are shared across languages (every ar/de/es/hi/vi/zh question id also occurs in
  the English file), which is what makes the cross-lingual variant possible: queries in X, the
  English paragraph holding the same question id as the one relevant document.
* ``stsb_multi_mt/stsb-<lang>-<split>.csv``: CSV (excel dialect), no header: ``s1,s2,score``, score in [0, 5].
* ``sts17_semeval/STS.input.<track>.txt`` (TSV ``s1\\ts2``) + ``STS.gs.<track>.txt`` (one score per
  line). Gold line i scores input line i. ``track6.tr-en`` has 500 input lines for 250 scores: the
  scored pairs are the *first* 250 lines. Evidence: mteb 2.26's descriptive statistics for its
  STS17 ``en-tr`` subset (250 pairs; text1 10,479 characters, min 15 / max 101; text2 10,400
  characters; mean gold 2.1336) match lines 1-250 exactly, and no other 250-line selection (the
  last half, odd or even lines) does. Lines 251-500 have no score and are reported as skipped.

Every skipped row is counted, returned (``skipped``) and logged once per file; ``strict=True`` raises instead.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtrain.data.shared import shared_data_root
from rtrain.eval.skips import Skips, existing_dir

MLQA_DIR, STSB_DIR, STS17_DIR = "mlqa_r_dev", "stsb_multi_mt", "sts17_semeval"
STSB_SPLITS = ("dev", "test")
# rtrain / mteb subset name -> SemEval file track. The names follow the column order of each file and
# match mteb's STS17 subsets (en-ar = track2, es-en = track4a, en-tr = track6); track 4b (WMT news,
# English first) is not in mteb and gets its own name.
STS17_TRACKS = {
    "ar-ar": "track1.ar-ar",
    "en-ar": "track2.ar-en",
    "es-es": "track3.es-es",
    "es-en": "track4a.es-en",
    "en-es-wmt": "track4b.es-en",
    "en-en": "track5.en-en",
    "en-tr": "track6.tr-en",
}


def default_data_root() -> Path:
    """The shared-data folder (``rtrain.data.shared``): ``$RTRAIN_SHARED_DATA``, else ``<repo>/../shared/data``."""
    return shared_data_root()


@dataclass
class RetrievalData:
    """A retrieval task: ``corpus`` {doc_id: text}, ``queries`` {qid: text}, ``qrels`` {qid: {doc_id: grade}}."""

    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    skipped: dict[str, int] = field(default_factory=dict)  # file name -> rows skipped


@dataclass
class STSPairs:
    """Scored sentence pairs; unpacks as ``s1, s2, scores = pairs``."""

    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]
    skipped: int = 0
    source: str = ""

    def __iter__(self) -> Iterator[list[Any]]:
        return iter((self.sentences1, self.sentences2, self.scores))

    def __len__(self) -> int:
        return len(self.scores)


def _check_limit(limit: int | None, what: str) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit={limit!r} must be a positive number of {what} (or None for all)")


# ------------------------------------------------------------------------------------------------
# MLQA-R
# ------------------------------------------------------------------------------------------------


def mlqa_languages(root: str | Path | None = None) -> list[str]:
    """Language codes with a ``mlqa-r-dev.<lang>.json`` file under ``root``."""
    folder = existing_dir(root or default_data_root() / MLQA_DIR, "MLQA-R")
    return sorted(p.name.split(".")[1] for p in folder.glob("mlqa-r-dev.*.json"))


@dataclass
class _Squad:
    paragraphs: dict[str, str]  # pid -> text
    questions: dict[str, str]  # qid -> text (usable questions only, file order)
    paragraph_of: dict[str, str]  # qid -> pid
    skipped: int


def _parse_squad(lang: str, root: str | Path | None, strict: bool) -> _Squad:
    folder = existing_dir(root or default_data_root() / MLQA_DIR, "MLQA-R")
    path = folder / f"mlqa-r-dev.{lang}.json"
    if not path.is_file():
        raise FileNotFoundError(f"MLQA-R file {path} does not exist; languages here: {mlqa_languages(folder)}")
    try:
        articles = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not SQuAD JSON with a top-level 'data' list ({err})") from None
    skips = Skips(path, strict)
    out = _Squad({}, {}, {}, 0)
    pid_of_text: dict[str, str] = {}
    total = 0
    for a_i, article in enumerate(articles):
        for p_i, para in enumerate(article.get("paragraphs", [])):
            where = f"article {a_i} paragraph {p_i}"
            context = para.get("context")
            qas = para.get("qas", [])
            if not isinstance(context, str) or not context.strip():
                total += len(qas)
                skips.add(where, f"empty or missing context ({len(qas)} question(s) lost)")
                continue
            pid = pid_of_text.setdefault(context, f"{lang}-{a_i}-{p_i}")  # identical paragraphs share one id
            out.paragraphs[pid] = context
            for qa in qas:
                total += 1
                qid, text = qa.get("id"), qa.get("question")
                if not isinstance(qid, str) or not isinstance(text, str) or not text.strip():
                    skips.add(where, f"question {qid!r} has no id or empty text")
                elif qid in out.questions:
                    skips.add(where, f"duplicate question id {qid!r}")
                elif qa.get("is_impossible") or not qa.get("answers"):
                    skips.add(where, f"question {qid!r} has no answer in its paragraph")
                else:
                    out.questions[qid] = text
                    out.paragraph_of[qid] = pid
    out.skipped = skips.report(total)
    return out


def _limited_corpus(paragraphs: dict[str, str], relevant: list[str], corpus_limit: int | None) -> dict[str, str]:
    """All paragraphs, or the relevant ones plus the first others (file order) up to ``corpus_limit``."""
    if corpus_limit is None:
        return dict(paragraphs)
    _check_limit(corpus_limit, "paragraphs")
    keep = dict.fromkeys(relevant)
    for pid in paragraphs:
        if len(keep) >= corpus_limit:
            break
        keep.setdefault(pid)
    return {pid: paragraphs[pid] for pid in paragraphs if pid in keep}


def read_mlqa(
    lang: str,
    *,
    root: str | Path | None = None,
    limit: int | None = None,
    corpus_limit: int | None = None,
    strict: bool = False,
) -> RetrievalData:
    """Monolingual MLQA-R: ``lang`` questions against ``lang`` paragraphs (one relevant paragraph each).

    ``limit`` keeps the first questions (file order); ``corpus_limit`` caps the corpus at the kept
    questions' paragraphs plus other paragraphs in file order (the full language corpus by default).
    """
    _check_limit(limit, "questions")
    data = _parse_squad(lang, root, strict)
    qids = list(data.questions)[:limit]
    if not qids:
        raise ValueError(f"MLQA-R {lang}: no usable questions (all {data.skipped} skipped)")
    corpus = _limited_corpus(data.paragraphs, [data.paragraph_of[q] for q in qids], corpus_limit)
    return RetrievalData(
        corpus,
        {q: data.questions[q] for q in qids},
        {q: {data.paragraph_of[q]: 1} for q in qids},
        skipped={f"mlqa-r-dev.{lang}.json": data.skipped},
    )


def read_mlqa_cross(
    lang: str,
    *,
    target: str = "en",
    root: str | Path | None = None,
    limit: int | None = None,
    corpus_limit: int | None = None,
    strict: bool = False,
) -> RetrievalData:
    """Cross-lingual MLQA-R: ``lang`` questions against the ``target`` paragraphs.

    The relevant document of question id q is the ``target`` paragraph that holds the same id q (MLQA
    ids are shared across languages). Questions whose id is absent from the target file are skipped
    and counted (none in the shipped dev files).
    """
    if lang == target:
        raise ValueError(f"cross-lingual MLQA needs two languages; got {lang}-{target} (use read_mlqa)")
    _check_limit(limit, "questions")
    source, tgt = _parse_squad(lang, root, strict), _parse_squad(target, root, strict)
    skips = Skips(Path(root or default_data_root() / MLQA_DIR) / f"mlqa-r-dev.{lang}.json", strict)
    for qid in source.questions:
        if qid not in tgt.paragraph_of:
            skips.add(f"question {qid}", f"no {target} question with this id")
    qids = [q for q in source.questions if q in tgt.paragraph_of][:limit]
    skips.report(len(source.questions))
    if not qids:
        raise ValueError(f"MLQA-R {lang}-{target}: no {lang} question has a {target} counterpart")
    corpus = _limited_corpus(tgt.paragraphs, [tgt.paragraph_of[q] for q in qids], corpus_limit)
    return RetrievalData(
        corpus,
        {q: source.questions[q] for q in qids},
        {q: {tgt.paragraph_of[q]: 1} for q in qids},
        skipped={f"mlqa-r-dev.{lang}.json": source.skipped + len(skips), f"mlqa-r-dev.{target}.json": tgt.skipped},
    )


# ------------------------------------------------------------------------------------------------
# STS
# ------------------------------------------------------------------------------------------------


def _score(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 5.0 else None


def stsb_languages(root: str | Path | None = None, split: str = "test") -> list[str]:
    """Language codes with a ``stsb-<lang>-<split>.csv`` file under ``root``."""
    folder = existing_dir(root or default_data_root() / STSB_DIR, "STS-B multi-MT")
    return sorted(p.name.split("-")[1] for p in folder.glob(f"stsb-*-{split}.csv"))


def read_stsb(
    lang: str, split: str = "test", *, root: str | Path | None = None, limit: int | None = None, strict: bool = False
) -> STSPairs:
    """STS-B multi-MT pairs of one language and split (dev 1500 / test 1379 pairs); ``limit`` keeps the first ones."""
    if split not in STSB_SPLITS:
        raise ValueError(f"STS-B split={split!r}; choose from {STSB_SPLITS}")
    _check_limit(limit, "pairs")
    folder = existing_dir(root or default_data_root() / STSB_DIR, "STS-B multi-MT")
    path = folder / f"stsb-{lang}-{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"STS-B file {path} does not exist; languages here: {stsb_languages(folder, split)}")
    skips = Skips(path, strict)
    out = STSPairs([], [], [], source=str(path))
    total = 0
    with path.open(encoding="utf-8", newline="") as f:
        for line_no, fields in enumerate(csv.reader(f, dialect="excel"), start=1):
            if not fields:
                continue
            total += 1
            if len(fields) != 3:
                skips.add(f"row {line_no}", f"{len(fields)} fields, expected s1,s2,score")
            elif not fields[0].strip() or not fields[1].strip():
                skips.add(f"row {line_no}", "empty sentence")
            elif (score := _score(fields[2])) is None:
                skips.add(f"row {line_no}", f"score {fields[2]!r} is not a number in [0, 5]")
            elif limit is None or len(out) < limit:
                out.sentences1.append(fields[0])
                out.sentences2.append(fields[1])
                out.scores.append(score)
    out.skipped = skips.report(total)
    if not out.scores:
        raise ValueError(f"{path} has no usable scored pairs")
    return out


def read_sts17(
    track: str, *, root: str | Path | None = None, limit: int | None = None, strict: bool = False
) -> STSPairs:
    """One SemEval-2017 track by its subset name (see ``STS17_TRACKS``): gold line i scores input line i.

    Input lines past the last gold line (track6: lines 251-500) and pairs with an empty gold line are
    skipped and counted; fewer input lines than gold scores raises (the files cannot be aligned).
    """
    if track not in STS17_TRACKS:
        raise ValueError(f"STS17 track {track!r} is unknown; choose from {sorted(STS17_TRACKS)}")
    _check_limit(limit, "pairs")
    folder = existing_dir(root or default_data_root() / STS17_DIR, "SemEval-2017 STS")
    inp, gold = (folder / f"STS.{kind}.{STS17_TRACKS[track]}.txt" for kind in ("input", "gs"))
    for p in (inp, gold):
        if not p.is_file():
            raise FileNotFoundError(f"STS17 file {p} does not exist")
    lines = inp.read_text(encoding="utf-8").splitlines()
    scores = gold.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    while scores and not scores[-1].strip():
        scores.pop()
    if len(lines) < len(scores):
        raise ValueError(f"{inp} has {len(lines)} lines but {gold} has {len(scores)} scores: cannot align them")
    skips = Skips(inp, strict)
    out = STSPairs([], [], [], source=str(inp))
    for i, line in enumerate(lines):
        fields = line.split("\t")
        if i >= len(scores):
            skips.add(f"line {i + 1}", f"no gold score ({gold.name} has {len(scores)} lines)")
        elif not scores[i].strip():
            skips.add(f"line {i + 1}", "empty gold score (unscored pair)")
        elif len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            skips.add(f"line {i + 1}", f"{len(fields)} field(s) or an empty sentence, expected s1<TAB>s2")
        elif (score := _score(scores[i])) is None:
            skips.add(f"line {i + 1}", f"gold score {scores[i]!r} is not a number in [0, 5]")
        elif limit is None or len(out) < limit:
            out.sentences1.append(fields[0])
            out.sentences2.append(fields[1])
            out.scores.append(score)
    out.skipped = skips.report(len(lines))
    if not out.scores:
        raise ValueError(f"{inp} has no usable scored pairs")
    return out
