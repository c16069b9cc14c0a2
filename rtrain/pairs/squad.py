"""SQuAD-style QA JSON -> `qa` pairs: each question -> the paragraph it was asked about.

Layout: `{"data": [{"paragraphs": [{"context": str, "qas": [{"question": str, "answers": [...],
"is_impossible": bool?}]}]}]}`. Unanswerable questions (`is_impossible: true`, or no answers) are
skipped and counted unless `skip_unanswerable: false`; blank questions and paragraphs are counted.
A structural problem is an error naming the file, the JSON path and the keys found there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rtrain.pairs.spec import PairsSpec, SquadSource
from rtrain.pairs.spec_base import as_paths
from rtrain.pairs.textio import CorpusError, Pair, Skips, input_file, read_text

LAYOUT = "a SQuAD file is {'data': [{'paragraphs': [{'context': ..., 'qas': [{'question': ...}]}]}]}"


def _get(node: Any, key: str, kind: type, path: Path, where: str) -> Any:
    """`node[key]` checked to be a `kind`; CorpusError naming the JSON path and what is there instead."""
    if not isinstance(node, dict):
        raise CorpusError(f"{path}: {where} is a {type(node).__name__}, expected an object; {LAYOUT}")
    if key not in node:
        raise CorpusError(f"{path}: {where} has no key {key!r} (it has {sorted(node)}); {LAYOUT}")
    value = node[key]
    if not isinstance(value, kind):
        raise CorpusError(f"{path}: {where}.{key} is a {type(value).__name__}, expected a {kind.__name__}; {LAYOUT}")
    return value


def load_json(path: Path) -> Any:
    """A whole-file JSON document; CorpusError with line and column of a syntax error."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise CorpusError(
            f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno}); fix the file "
            f"(a SQuAD file is one JSON document, not JSON lines)"
        ) from None


def _clean_context(text: str, replace: dict[str, str]) -> str:
    for old, new in replace.items():
        text = text.replace(old, new)
    return text.strip()


def read_squad_file(path: Path, lang: str, src: SquadSource, skips: Skips) -> list[Pair]:
    """Candidate pairs of one file in document order."""
    doc = load_json(path)
    articles = _get(doc, "data", list, path, "the top level")
    pairs: list[Pair] = []
    questions = 0
    for ai, article in enumerate(articles):
        for pi, par in enumerate(_get(article, "paragraphs", list, path, f"data[{ai}]")):
            here = f"data[{ai}].paragraphs[{pi}]"
            context = _clean_context(_get(par, "context", str, path, here), src.context_replace)
            for qi, qa in enumerate(_get(par, "qas", list, path, here)):
                where = f"{path}: {here}.qas[{qi}]"
                question = _get(qa, "question", str, path, f"{here}.qas[{qi}]").strip()
                questions += 1
                answers = qa.get("answers")
                if not question:
                    skips.add("blank question", where)
                elif not context:
                    skips.add("blank paragraph", where)
                elif src.skip_unanswerable and (qa.get("is_impossible") is True or not answers):
                    skips.add("unanswerable question (is_impossible or no answers)", where)
                else:
                    pairs.append(Pair(question, context, lang, lang, src.task, where))
    if questions == 0:
        raise CorpusError(f"{path}: holds no questions; {LAYOUT}")
    return pairs


def read_squad(src: SquadSource, spec: PairsSpec, skips: Skips) -> tuple[list[Pair], list[Path]]:
    """Candidate `qa` pairs of every file, in spec order, and the files read."""
    pairs: list[Pair] = []
    paths: list[Path] = []
    for lang, raw in src.files.items():
        for one in as_paths(raw):
            path = input_file(spec, one)
            paths.append(path)
            pairs.extend(read_squad_file(path, lang, src, skips))
    return pairs, paths
