"""Suite results on disk: one mteb-layout JSON per task and model, a Markdown summary, bar charts.

The JSON is what mteb 2.x's ``TaskResult.to_disk`` writes (``mteb.TaskResult.from_disk`` reads it)::

    {"dataset_revision": ..., "task_name": ..., "mteb_version": ...,
     "scores": {split: [{<metric>: value, ..., "main_score": ..., "hf_subset": "de",
                         "languages": ["deu-Latn"], "mteb_version": ...}, ...]},
     "evaluation_time": seconds, "kg_co2_emissions": null, "date": unix time, "evaluation_phases": null}

Scores are rounded to 6 decimals, as mteb does. The path is ``<out>/<model>/<TaskName>.json``
(``/`` in a model name becomes ``__``, mteb's convention).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any


def mteb_version() -> str | None:
    """The installed mteb's version (without importing it), or None."""
    try:
        return metadata.version("mteb")
    except metadata.PackageNotFoundError:
        return None


def content_revision(texts: Iterable[str]) -> str:
    """A short hash of a task's texts, written as ``dataset_revision`` (same data -> same revision)."""
    digest = hashlib.sha1()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return f"local-{digest.hexdigest()[:12]}"


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) and math.isfinite(value) else value


def task_result(
    task_name: str,
    split: str,
    subsets: Mapping[str, Mapping[str, float]],
    languages: Mapping[str, list[str]],
    *,
    evaluation_time: float,
    dataset_revision: str,
) -> dict[str, Any]:
    """An mteb ``TaskResult`` as a dict: one score entry per subset, in subset order."""
    version = mteb_version()
    entries = []
    for subset, metrics in subsets.items():
        if "main_score" not in metrics:
            raise ValueError(f"task {task_name}: subset {subset!r} has no main_score; metrics: {sorted(metrics)}")
        entries.append(
            {
                **{k: _round(float(v)) for k, v in metrics.items()},
                "hf_subset": subset,
                "languages": list(languages.get(subset, [subset])),
                "mteb_version": version,
            }
        )
    return {
        "dataset_revision": dataset_revision,
        "task_name": task_name,
        "mteb_version": version,
        "scores": {split: entries},
        "evaluation_time": evaluation_time,
        "kg_co2_emissions": None,
        "date": time.time(),
        "evaluation_phases": None,
    }


def model_dir_name(model: str) -> str:
    return model.replace("/", "__")


def write_task_result(out_dir: Path, model: str, result: Mapping[str, Any]) -> Path:
    """Write ``<out_dir>/<model>/<task_name>.json``; returns the path."""
    path = Path(out_dir) / model_dir_name(model) / f"{result['task_name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, allow_nan=True), encoding="utf-8")
    return path


def read_subsets(path: Path) -> tuple[str, dict[str, dict[str, float]]]:
    """``(split, {hf_subset: metrics})`` of a task result JSON written by :func:`write_task_result` or mteb."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    split, entries = next(iter(data["scores"].items()))
    skip = {"hf_subset", "languages", "mteb_version"}
    return split, {e["hf_subset"]: {k: v for k, v in e.items() if k not in skip} for e in entries}


def mean_over_subsets(subsets: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Unweighted mean of every metric all subsets share (mteb's task score averages subsets)."""
    if not subsets:
        raise ValueError("no subsets to average")
    common = set.intersection(*(set(m) for m in subsets.values()))
    first = next(iter(subsets.values()))
    return {k: float(sum(float(m[k]) for m in subsets.values()) / len(subsets)) for k in first if k in common}
