"""Pull the JSON an LLM was asked for out of its reply, and check it.

Models wrap JSON in prose or code fences; `find_json` returns the first JSON value of the wanted
kind anywhere in the text (for examples: the first object that has all three keys). `parse_tasks`
and `parse_example` raise `InvalidOutput` with a short, stable `reason` (counted in the manifest)
and a `detail` for people.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from rtrain.synth.llm.prompts import OUTPUT_KEYS

# reasons an output is rejected (keys of the manifest's `skipped` counts)
NO_JSON = "no_json"
NOT_LIST = "not_a_list_of_strings"
MISSING_KEYS = "missing_keys"
NOT_TEXT = "empty_or_non_string_value"
SAME_TEXT = "positive_equals_negative"


class InvalidOutput(ValueError):
    """A model reply that is not the JSON asked for; `reason` is one of this module's constants."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def iter_json(text: str, kind: type) -> Iterator[Any]:
    """Every JSON value of type `kind` (dict or list) that starts at an opening bracket of `text`, in order.

    Each bracket is tried with a JSON decoder, so prose, code fences and trailing text are ignored
    (values nested in an earlier one are yielded too).
    """
    opener = "{" if kind is dict else "["
    decoder = json.JSONDecoder()
    start = text.find(opener)
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, kind):
            yield value
        start = text.find(opener, start + 1)


def find_json(text: str, kind: type, wanted: Callable[[Any], bool] = lambda value: True) -> Any:
    """The first JSON value of type `kind` in `text` for which `wanted` holds, else the first of that type.

    InvalidOutput(no_json) if the text holds no JSON value of that type at all.
    """
    first = None
    for value in iter_json(text, kind):
        if wanted(value):
            return value
        first = value if first is None else first
    if first is not None:
        return first
    shown = text.strip().replace("\n", " ")[:80]
    raise InvalidOutput(NO_JSON, f"no JSON {'object' if kind is dict else 'list'} in the reply {shown!r}")


def parse_tasks(text: str, limit: int) -> list[str]:
    """Step-1 reply -> up to `limit` distinct, non-empty task descriptions (order kept)."""
    items = find_json(text, list)
    tasks: list[str] = []
    for item in items:
        if isinstance(item, str) and item.strip() and item.strip() not in tasks:
            tasks.append(item.strip())
    if not tasks:
        raise InvalidOutput(NOT_LIST, f"the JSON list holds no non-empty strings ({str(items)[:80]!r})")
    return tasks[:limit]


def parse_example(text: str) -> dict[str, str]:
    """Step-2 reply -> {user_query, positive_document, hard_negative_document}, each a non-empty string."""
    obj = find_json(text, dict, lambda value: all(key in value for key in OUTPUT_KEYS))
    missing = [key for key in OUTPUT_KEYS if key not in obj]
    if missing:
        raise InvalidOutput(MISSING_KEYS, f"the JSON object lacks {missing} (has {sorted(obj)[:6]})")
    out: dict[str, str] = {}
    for key in OUTPUT_KEYS:
        value = obj[key]
        if not isinstance(value, str) or not value.strip():
            raise InvalidOutput(NOT_TEXT, f"{key} is {value!r}, expected non-empty text")
        out[key] = value.strip()
    if out["positive_document"] == out["hard_negative_document"]:
        raise InvalidOutput(SAME_TEXT, "the hard negative repeats the positive document")
    return out
