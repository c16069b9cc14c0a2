"""The pair schema: one row per training example, shared by synth, mining, training and eval.

| column        | type              | required | meaning                                               |
|---------------|-------------------|----------|-------------------------------------------------------|
| `id`          | str               | yes      | unique across the dataset                             |
| `query`       | str               | yes      | the anchor text (question, source sentence, ...)      |
| `positive`    | str               | yes      | the document that answers / matches the query         |
| `negatives`   | list[str]         | yes      | hard negatives; may be empty                          |
| `task`        | str               | yes      | retrieval, qa, bitext, paraphrase, title_body, ...    |
| `query_lang`  | str               | yes      | BCP-47 / ISO 639 code of the query                    |
| `doc_lang`    | str               | yes      | code of the positive and negatives                    |
| `source`      | str               | yes      | dataset name the row came from                        |
| `instruction` | str               | no       | task instruction prepended to the query               |
| `pos_score`   | float             | no       | miner's score of the positive                         |
| `neg_scores`  | list[float]       | no       | miner's scores of the negatives, aligned              |

Files are Parquet (this schema) or JSONL (one JSON object per line, same keys).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

REQUIRED_STR = ("id", "query", "positive", "task", "query_lang", "doc_lang", "source")
OPTIONAL_STR = ("instruction",)
TASKS = (
    "retrieval",
    "qa",
    "bitext",
    "paraphrase",
    "title_body",
    "classification",
    "clustering",
    "sts",
    "self_supervised",
)

PAIR_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("query", pa.string(), nullable=False),
        pa.field("positive", pa.string(), nullable=False),
        pa.field("negatives", pa.list_(pa.string()), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("query_lang", pa.string(), nullable=False),
        pa.field("doc_lang", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("instruction", pa.string()),
        pa.field("pos_score", pa.float32()),
        pa.field("neg_scores", pa.list_(pa.float32())),
    ]
)


def row_problems(row: dict[str, Any]) -> list[str]:
    """Everything wrong with one row, as short phrases naming the field and the fix. Empty if valid."""
    problems: list[str] = []
    for key in REQUIRED_STR:
        if key not in row or row[key] is None:
            problems.append(f"missing field '{key}' (a non-empty string)")
        elif not isinstance(row[key], str):
            problems.append(f"field '{key}' is {type(row[key]).__name__} {row[key]!r}, expected a string")
        elif not row[key].strip():
            problems.append(f"field '{key}' is empty")
    negatives = row.get("negatives", [])
    if negatives is None:
        negatives = []
    if not isinstance(negatives, (list, tuple)) and not hasattr(negatives, "tolist"):
        problems.append(f"field 'negatives' is {type(negatives).__name__}, expected a list of strings ([] if none)")
    else:
        for i, neg in enumerate(list(negatives)):
            if not isinstance(neg, str) or not neg.strip():
                problems.append(f"negatives[{i}] is {neg!r}, expected a non-empty string")
    problems += _score_problems(row)
    for key in OPTIONAL_STR:
        if row.get(key) is not None and not isinstance(row[key], str):
            problems.append(f"field '{key}' is {type(row[key]).__name__}, expected a string or null")
    unknown = set(row) - set(PAIR_SCHEMA.names)
    if unknown:
        problems.append(f"unknown field(s) {sorted(unknown)}; allowed: {PAIR_SCHEMA.names}")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _score_problems(row: dict[str, Any]) -> list[str]:
    """The miner's scores: a number (or null) for the positive, one number per negative (or null)."""
    problems = []
    if row.get("pos_score") is not None and not _is_number(row["pos_score"]):
        problems.append(f"field 'pos_score' is {row['pos_score']!r}, expected a number or null")
    scores = row.get("neg_scores")
    if scores is not None:
        scores = scores.tolist() if hasattr(scores, "tolist") else scores
        if not isinstance(scores, (list, tuple)) or not all(_is_number(s) for s in scores):
            problems.append(f"field 'neg_scores' is {scores!r}, expected a list of numbers (one per negative) or null")
    return problems


def normalize_row(row: dict[str, Any]) -> dict[str, Any]:
    """A valid row with every schema column present (optional ones as None, negatives as a list)."""
    out = {name: row.get(name) for name in PAIR_SCHEMA.names}
    out["negatives"] = list(out["negatives"] or [])
    if out["neg_scores"] is not None:
        out["neg_scores"] = [float(s) for s in out["neg_scores"]]
    return out


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of the pair schema as an Arrow table with `PAIR_SCHEMA` (for writing Parquet)."""
    return pa.Table.from_pylist([normalize_row(r) for r in rows], schema=PAIR_SCHEMA)
