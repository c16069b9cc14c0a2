"""PNG plots of a study's metric against each swept key (matplotlib, no display needed)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from rtrain.tune.study import Study  # noqa: E402

ALL = math.inf  # a null filter (every task / language / row) sorts after every number


def label(value: float) -> str:
    """A knob level for axes and tables: 'all' for no filter."""
    return "all" if value == ALL else f"{value:g}"


def is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def axis_order(values: list[Any]) -> list[Any]:
    """Category order: numbers ascending, then text, then None (shown as 'none': e.g. 'no filter')."""
    unique = list(dict.fromkeys(None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values))
    numbers = sorted(v for v in unique if is_number(v))
    texts = sorted(str(v) for v in unique if v is not None and not is_number(v))
    return numbers + texts + ([None] if None in unique else [])


def short_label(text: str, width: int = 28) -> str:
    """A category label for an axis: bundle parts without their section ('loss.temperature=0.1' ->
    'temperature=0.1'), cut to `width` characters."""
    parts = [part.split(".", 1)[1] if "." in part.split("=", 1)[0] else part for part in text.split(",")]
    joined = ",".join(parts)
    return joined if len(joined) <= width else joined[: width - 3] + "..."


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def plot_knob(table: pd.DataFrame, key: str, column: str, title: str, out: Path, log_x: bool = False) -> Path:
    """Metric against one key: every trial a point (hollow if stopped early), the mean per value a line."""
    ok = table[(table["status"] != "failed") & table[column].notna()]
    values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in ok[key]]
    numeric = all(is_number(v) for v in values)
    order = [] if numeric else axis_order(values)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(order)), 4.5 if order else 4))
    if numeric:
        xs = [float(v) for v in values]
    else:
        position = {("none" if v is None else str(v)): i for i, v in enumerate(order)}
        xs = [position["none" if v is None else str(v)] for v in values]
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([short_label("none" if v is None else str(v)) for v in order], rotation=30, ha="right")
    ys = list(ok[column])
    done = [s == "completed" for s in ok["status"]]
    ax.scatter(
        [x for x, d in zip(xs, done) if d], [y for y, d in zip(ys, done) if d], color="tab:blue", label="completed"
    )
    if not all(done):
        ax.scatter(
            [x for x, d in zip(xs, done) if not d],
            [y for y, d in zip(ys, done) if not d],
            facecolors="none",
            edgecolors="tab:orange",
            label="stopped early",
        )
    means = pd.DataFrame({"x": xs, "y": ys}).groupby("x")["y"].mean().sort_index()
    if len(means) > 1 and numeric:  # a line only where the values have an order
        ax.plot(means.index, means.values, color="tab:blue", alpha=0.5, label="mean per value")
    elif len(means) < len(xs):  # categories with repeats (seeds): a bar at each mean
        ax.scatter(means.index, means.values, marker="_", s=400, color="tab:blue", alpha=0.6, label="mean per value")
    if numeric and log_x and min(xs) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel(f"{column}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_knobs(study: Study, table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One PNG per search-space key: `<out_dir>/<metric>_vs_<key>.png`."""
    column = f"{study.config.metric}_best"
    if table.empty or column not in table or table[column].notna().sum() == 0:
        return []
    paths = []
    for key, dist in study.config.search_space.items():
        numbers = [v for v in table[key] if is_number(v)]
        log_x = dist.kind == "loguniform" or (bool(numbers) and min(numbers) > 0 and max(numbers) / min(numbers) >= 50)
        out = out_dir / f"{safe_name(study.config.metric)}_vs_{safe_name(key)}.png"
        paths.append(plot_knob(table, key, column, f"{study.config.name}: {study.config.metric} vs {key}", out, log_x))
    if "scaling_efficiency" in table:  # a scaling study: throughput and efficiency against the worker count
        for measure in ("pairs_per_s", "scaling_efficiency"):
            out = out_dir / f"{measure}_vs_num_workers.png"
            paths.append(plot_knob(table, "num_workers", measure, f"{study.config.name}: {measure}", out))
    return paths


def line_plot(
    xs: list[float],
    ys: list[float],
    base: float | None,
    xlabel: str,
    metric: str,
    title: str,
    out: Path,
    log_x: bool = False,
) -> Path:
    """Mean metric per knob level (a null level drawn as 'all', right of the largest), the base model dashed."""
    fig, ax = plt.subplots(figsize=(6, 4))
    finite = [x if x != ALL else None for x in xs]
    ticks = [x for x in finite if x is not None]
    positions = [x if x is not None else (max(ticks) * 2 if ticks else 1.0) for x in finite]
    ax.plot(positions, ys, marker="o", label="retrofitted (final eval)")
    if base is not None:
        ax.axhline(base, color="gray", linestyle="--", label="base model")
    if log_x and min(positions) > 0:
        ax.set_xscale("log")
        ax.minorticks_off()  # the levels are the ticks
    ax.set_xticks(positions)
    ax.set_xticklabels([label(x) for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
