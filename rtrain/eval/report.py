"""Compare models on one evaluator's results: a Markdown table and a per-language bar chart.

``results`` is ``{model_name: evaluator_output}`` where each output is what an evaluator returns,
``{"overall": {metric: value}, "per_language": {lang: {metric: value}}}`` (a bare metrics dict is
taken as ``overall``). Models keep their insertion order; the "first" model is the baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

OVERALL = "overall"


def _split(output: Mapping[str, Any]) -> tuple[Mapping[str, float], Mapping[str, Mapping[str, float]]]:
    if "overall" in output:
        return output["overall"], output.get("per_language") or {}
    return output, {}


def _rows(results: Mapping[str, Mapping[str, Any]], metric: str) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Row labels (languages sorted, then overall) and ``{model: {row: value}}`` for ``metric``."""
    if not results:
        raise ValueError("no results to report; pass {model_name: evaluator_output}")
    table: dict[str, dict[str, float]] = {}
    languages: set[str] = set()
    for model, output in results.items():
        overall, per_language = _split(output)
        if metric not in overall:
            raise KeyError(f"model {model!r} has no metric {metric!r}; available: {sorted(overall)}")
        table[model] = {OVERALL: float(overall[metric])}
        for lang, metrics in per_language.items():
            if metric in metrics:
                table[model][lang] = float(metrics[metric])
                languages.add(lang)
    return [*sorted(languages), OVERALL], table


def format_table(results: Mapping[str, Mapping[str, Any]], metric: str = "main_score", digits: int = 4) -> str:
    """Markdown table: one row per language plus ``overall``, one column per model.

    With two or more models a last column gives the improvement of the last model over the first
    (absolute difference, e.g. ``+0.0312``); a language a model lacks shows ``n/a``.
    """
    rows, table = _rows(results, metric)
    models = list(table)
    header = [f"language ({metric})", *models]
    with_delta = len(models) >= 2
    if with_delta:
        header.append(f"Δ {models[-1]} vs {models[0]}")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for row in rows:
        cells = [f"**{row}**" if row == OVERALL else row]
        for model in models:
            value = table[model].get(row)
            cells.append("n/a" if value is None else f"{value:.{digits}f}")
        if with_delta:
            first, last = table[models[0]].get(row), table[models[-1]].get(row)
            cells.append("n/a" if first is None or last is None else f"{last - first:+.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overall_score(output: Mapping[str, Any], metric: str) -> float:
    """A task's overall score for ``metric`` from an evaluator's or a suite's output."""
    return float(_split(output)[0][metric])


def overview_table(rows: Mapping[str, Mapping[str, float]], digits: int = 4) -> str:
    """Markdown table, one row per task (``"task (metric)" -> {model: overall score}``), one column per model,
    and the last model's change over the first: the short form of a report, one line per task."""
    models = list(next(iter(rows.values()))) if rows else []
    header = ["task (metric)", *models] + ([f"Δ {models[-1]} vs {models[0]}"] if len(models) >= 2 else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for task, scores in rows.items():
        cells = [task, *(f"{scores[m]:.{digits}f}" for m in models)]
        if len(models) >= 2:
            cells.append(f"{scores[models[-1]] - scores[models[0]]:+.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bar_chart(
    results: Mapping[str, Mapping[str, Any]],
    metric: str,
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Grouped bars per language (plus overall), one bar per model; saved to ``path`` (png, svg, pdf).

    Uses matplotlib's Agg canvas directly, so it needs no display and leaves pyplot state alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, table = _rows(results, metric)
    models = list(table)
    width = 0.8 / len(models)
    fig = Figure(figsize=(max(6.0, 0.6 * len(rows) * max(1, len(models)) ** 0.5 + 2), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for m_i, model in enumerate(models):
        xs = [r_i + (m_i - (len(models) - 1) / 2) * width for r_i in range(len(rows))]
        ys = [table[model].get(row, 0.0) for row in rows]
        ax.bar(xs, ys, width=width, label=model)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(rows, rotation=45 if len(rows) > 8 else 0, ha="right" if len(rows) > 8 else "center")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} per language")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out
