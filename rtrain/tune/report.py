"""The ablations report: does each of the method's three findings hold on this setup, by the measured numbers?

Findings (Tu, Yavuz, Zhou 2025): (1) hard negatives are essential; (2) task diversity matters more
than language diversity; (3) gains from more training data plateau. Each verdict is computed
from the completed trials' final evaluation (`<metric>_last`), averaged over `train.seed` when the
study sweeps it; the seed-to-seed spread then sets the margin a difference must clear. Without
seeds the report says the differences are unreplicated.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from rtrain.tune.ablations import Ablations
from rtrain.tune.plots import ALL, label, line_plot
from rtrain.tune.results import StudyOutcome, format_cell

SEED = "train.seed"


def level(value: Any) -> float:
    """A diversity / scale knob value as a sortable number: a list counts its items (data.tasks: [a, b] -> 2),
    and null (no filter) is 'all' = inf."""
    if isinstance(value, str) and value.startswith("["):
        value = json.loads(value)
    if isinstance(value, list):
        return float(len(value))
    return ALL if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def describe_levels(values: pd.Series) -> str:
    """The distinct settings of a knob as written, e.g. '["retrieval"], null (all)'."""
    shown = {("null (all)" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)) for v in values}
    return ", ".join(sorted(shown, key=lambda text: (text.startswith("null"), len(text), text)))


def pick_knob(outcome: StudyOutcome, *candidates: str) -> str:
    """The first of `candidates` that the study swept (e.g. data.tasks or data.num_tasks)."""
    for knob in candidates:
        if knob in outcome.table:
            return knob
    raise ValueError(f"the study sweeps none of {candidates}; the report needs one of them")


def aggregate(outcome: StudyOutcome, metric: str, knobs: list[str]) -> tuple[pd.DataFrame, float | None]:
    """Mean, spread and count of the final metric per knob setting (completed trials), and the pooled seed std."""
    table = outcome.table[outcome.table["status"] == "completed"].copy()
    column = f"{metric}_last"
    for knob in knobs:
        table[knob] = [level(v) for v in table[knob]]
    grouped = table.groupby(knobs)[column].agg(["mean", "std", "count"]).reset_index()
    spreads = grouped["std"].dropna()
    noise = float(math.sqrt((spreads**2).mean())) if len(spreads) else None
    return grouped, noise


def margin(noise: float | None, n: float) -> float:
    """Two standard errors of a difference of two means of n seeds (0 when unreplicated)."""
    return 0.0 if noise is None else 2.0 * noise * math.sqrt(2.0 / max(n, 1.0))


def negatives_finding(outcome: StudyOutcome, metric: str, base: float | None, out: Path) -> tuple[list[str], Path]:
    knob = "loss.negatives_per_query"
    grouped, noise = aggregate(outcome, metric, [knob])
    lines = [f"| hard negatives per query | {metric} (mean) | n | Δ vs in-batch only |", "|---:|---:|---:|---:|"]
    zero = grouped[grouped[knob] == 0]
    ref = float(zero["mean"].iloc[0]) if len(zero) else None
    for _, r in grouped.iterrows():
        delta = "" if ref is None else f"{r['mean'] - ref:+.4f}"
        lines.append(f"| {label(r[knob])} | {r['mean']:.4f} | {int(r['count'])} | {delta} |")
    plot = line_plot(
        list(grouped[knob]),
        list(grouped["mean"]),
        base,
        knob,
        metric,
        "Hard negatives per query (0 = in-batch only)",
        out / "negatives.png",
    )
    if ref is None:
        return lines + ["", "**Verdict: not testable** — no trial trained with in-batch negatives only (k = 0)."], plot
    gains = {r[knob]: r["mean"] - ref for _, r in grouped.iterrows() if r[knob] > 0}
    m = margin(noise, grouped["count"].min())
    beat = [k for k, g in gains.items() if g > m]
    best_k = max(gains, key=gains.get) if gains else None
    if gains and len(beat) == len(gains):
        verdict = (
            f"**Verdict: holds.** Every k ≥ 1 beats in-batch-only training (gains {min(gains.values()):+.4f} "
            f"to {max(gains.values()):+.4f}; best k = {label(best_k)})."
        )
    elif beat:
        verdict = (
            f"**Verdict: holds in part.** k = {', '.join(label(k) for k in beat)} beat in-batch-only training, "
            f"k = {', '.join(label(k) for k in gains if k not in beat)} did not (best k = {label(best_k)}, "
            f"{gains[best_k]:+.4f})."
        )
    elif gains and max(gains.values()) > 0:
        verdict = (
            f"**Verdict: inconclusive.** The best gain over in-batch-only training ({max(gains.values()):+.4f}, "
            f"k = {label(best_k)}) is within the margin."
        )
    else:
        verdict = (
            f"**Verdict: does not hold here.** No number of hard negatives beat in-batch-only training "
            f"(best gain {max(gains.values(), default=0.0):+.4f})."
        )
    return lines + ["", verdict + _noise_note(noise, m)], plot


def diversity_finding(outcome: StudyOutcome, metric: str, out: Path) -> tuple[list[str], Path]:
    tk, lk = (
        pick_knob(outcome, "data.tasks", "data.num_tasks"),
        pick_knob(outcome, "data.languages", "data.num_languages"),
    )
    grouped, noise = aggregate(outcome, metric, [tk, lk])
    pivot = grouped.pivot(index=tk, columns=lk, values="mean").sort_index().sort_index(axis=1)
    lines = [
        "| task types \\ languages | " + " | ".join(label(c) for c in pivot.columns) + " |",
        "|---|" + "---:|" * len(pivot.columns),
    ]
    for t, row in pivot.iterrows():
        lines.append(f"| {label(t)} | " + " | ".join(format_cell(v) for v in row) + " |")
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(pivot.values, cmap="viridis", origin="lower")
    ax.set_xticks(range(len(pivot.columns)), [label(c) for c in pivot.columns])
    ax.set_yticks(range(len(pivot.index)), [label(t) for t in pivot.index])
    for (i, j), v in pd.DataFrame(pivot.values).stack().items():
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="white", fontsize=8)
    ax.set_xlabel(f"languages ({lk})")
    ax.set_ylabel(f"task types ({tk})")
    ax.set_title(f"{metric} at a fixed example budget")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    plot = out / "diversity.png"
    fig.savefig(plot, dpi=110)
    plt.close(fig)
    if pivot.shape[0] < 2 or pivot.shape[1] < 2 or pivot.isna().any().any():
        return lines + [
            "",
            "**Verdict: not testable** — the grid needs at least two levels of each axis, all completed.",
        ], plot
    task_effect = float((pivot.iloc[-1] - pivot.iloc[0]).mean())  # most vs fewest task types, averaged over languages
    lang_effect = float((pivot.iloc[:, -1] - pivot.iloc[:, 0]).mean())
    m = margin(noise, grouped["count"].min())
    summary = (
        f"Going from {label(pivot.index[0])} to {label(pivot.index[-1])} task types changes {metric} by "
        f"{task_effect:+.4f} (mean over language settings); going from {label(pivot.columns[0])} to "
        f"{label(pivot.columns[-1])} languages changes it by {lang_effect:+.4f} (mean over task settings). "
        f"Settings: {tk} in {describe_levels(outcome.table[tk])}; {lk} in {describe_levels(outcome.table[lk])}."
    )
    if task_effect - lang_effect > m:
        verdict = "**Verdict: holds.** Task diversity helped more than language diversity."
    elif lang_effect - task_effect > m:
        verdict = "**Verdict: does not hold here.** Language diversity helped more than task diversity."
    else:
        verdict = "**Verdict: inconclusive.** The two effects are within the margin of each other."
    return lines + ["", summary, "", verdict + _noise_note(noise, m)], plot


def scale_finding(outcome: StudyOutcome, metric: str, base: float | None, out: Path) -> tuple[list[str], Path]:
    knob = "data.max_rows"
    grouped, noise = aggregate(outcome, metric, [knob])
    grouped = grouped.sort_values(knob)
    lines = [f"| training rows | {metric} (mean) | n | gain per doubling vs previous |", "|---:|---:|---:|---:|"]
    per_doubling: list[float] = []
    rows, means = list(grouped[knob]), list(grouped["mean"])
    for i, (r, v) in enumerate(zip(rows, means)):
        gain = ""
        if i > 0 and rows[i] != ALL and rows[i - 1] != ALL:
            per_doubling.append((v - means[i - 1]) / math.log2(rows[i] / rows[i - 1]))
            gain = f"{per_doubling[-1]:+.4f}"
        lines.append(f"| {label(r)} | {v:.4f} | {int(grouped['count'].iloc[i])} | {gain} |")
    plot = line_plot(
        rows,
        means,
        base,
        "training rows (data.max_rows)",
        metric,
        "Training data scale",
        out / "data_scale.png",
        log_x=True,
    )
    if len(per_doubling) < 2:
        return lines + ["", "**Verdict: not testable** — needs at least three data sizes."], plot
    m = margin(noise, grouped["count"].min())
    first, last = per_doubling[0], per_doubling[-1]
    if first <= m:
        verdict = (
            f"**Verdict: inconclusive.** The first doubling gained {first:+.4f} per doubling, no more than the "
            "margin: there is no early gain for a plateau to follow."
        )
    elif last <= max(m, first / 3):
        verdict = (
            f"**Verdict: holds.** Gains shrink from {first:+.4f} per doubling at the small end to {last:+.4f} "
            "at the large end."
        )
    else:
        verdict = (
            f"**Verdict: does not hold here.** Gains per doubling are {first:+.4f} at the small end and still "
            f"{last:+.4f} at the large end: no plateau within this range."
        )
    return lines + ["", verdict + _noise_note(noise, m)], plot


def _noise_note(noise: float | None, m: float) -> str:
    if noise is None:
        return (
            " Each setting ran once (one seed), so these differences are unreplicated: "
            "differences of a few thousandths may be noise."
        )
    return f" Seed-to-seed spread (pooled std) {noise:.4f}; a difference counts when it exceeds {m:.4f}."


def write_report(
    ablations: Ablations, outcomes: dict[str, StudyOutcome], base: dict[str, float], timings: dict[str, float]
) -> Path:
    """README.md with the three findings, their tables and PNGs, plus each study's trials.csv, in report_dir."""
    out = ablations.report_dir
    out.mkdir(parents=True, exist_ok=True)
    study = ablations.studies["negatives"]
    metric = study.config.metric
    job = study.job({})
    base_score = base.get(metric)
    sections = {
        "1. Hard negatives are essential": negatives_finding(outcomes["negatives"], metric, base_score, out),
        "2. Task diversity matters more than language diversity": diversity_finding(outcomes["diversity"], metric, out),
        "3. Gains from more data plateau": scale_finding(outcomes["data_scale"], metric, base_score, out),
    }
    for key, outcome in outcomes.items():
        shutil.copy(outcome.study_dir / "trials.csv", out / f"{key}_trials.csv")
    total = sum(timings.values())
    cost = sum(o.table["worker_seconds"].sum(skipna=True) for o in outcomes.values())
    lines = [
        f"# {ablations.config.name}: the method's findings on this setup",
        "",
        ablations.config.description.strip(),
        "",
    ]
    lines += [
        "## Setup",
        "",
        f"- Model: `{job.model.name_or_path}`, LoRA r={job.lora.r}; "
        f"batch {job.train.batch_size_per_worker} per worker; "
        f"learning rate {job.train.learning_rate:g}; eval suite `{Path(job.eval.suite).name if job.eval else '-'}` "
        f"(metric `{metric}`, final evaluation of each trial).",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}; "
        f"{time.strftime('%Y-%m-%d')}.",
        f"- Wall time: {total / 60:.1f} min in all ("
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items())
        + f"); {cost:.0f} worker-seconds of trials.",
    ]
    if base:
        lines.append(
            f"- Base model before training: {metric} = {base_score:.4f} ("
            + ", ".join(f"{k} {v:.4f}" for k, v in base.items() if k != metric)
            + ")."
        )
    lines += ["", "## How to read this", "", *reading_notes(ablations, outcomes, base_score)]
    for title, (body, plot) in sections.items():
        lines += ["", f"## {title}", "", *body, "", f"![{plot.stem}]({plot.name})"]
    lines += [
        "",
        "## Data",
        "",
        "Every trial of each study, with its settings, metrics, throughput and cost: "
        + ", ".join(f"[`{k}_trials.csv`]({k}_trials.csv)" for k in outcomes)
        + ".",
    ]
    readme = out / "README.md"
    readme.write_text("\n".join(lines) + "\n")
    return readme


def reading_notes(ablations: Ablations, outcomes: dict[str, StudyOutcome], base_score: float | None) -> list[str]:
    """What the numbers can and cannot say: scale, replication, what the eval measures, the base model."""
    from rtrain.eval.suite import load_suite

    job = ablations.studies["negatives"].job({})
    notes = []
    if job.data.max_rows:
        steps = job.data.max_rows // (job.train.batch_size_per_worker * job.scaling.num_workers)
        notes.append(
            f"- Scale: a trial trains on {job.data.max_rows} pairs ({steps} optimizer steps of "
            f"{job.train.batch_size_per_worker * job.scaling.num_workers} pairs) unless its study sweeps "
            "the budget; the verdicts describe this scale, not the paper's."
        )
    seeded = [k for k, o in outcomes.items() if SEED in o.table]
    notes.append(
        "- Replication: "
        + (
            f"{', '.join(seeded)} swept train.seed; the others ran each setting once."
            if seeded
            else "every setting ran once (one seed); small differences may be noise."
        )
    )
    if job.eval is not None:
        suite = load_suite(job.eval.suite, job.eval.overrides)
        tasks = ", ".join(
            f"{t.task_name} ({t.kind}{', ' + ' '.join(langs) if langs else ''})"
            for t in suite.tasks
            for langs in [getattr(t, "languages", None)]
        )
        raw_eval = ablations.studies["negatives"].config.overrides.get("eval")
        synthetic = isinstance(raw_eval, dict) and any("{synth." in str(o) for o in raw_eval.get("overrides") or [])
        notes.append(
            f"- Metric: the mean main score of {tasks} (`{job.eval.suite}`)."
            + (
                " Synthetic held-out pairs share the training templates (with entities never trained on), so "
                "they reward learning those templates; bitext mining and other real-text tasks test transfer."
                if synthetic
                else ""
            )
        )
    if base_score is not None:
        notes.append(
            f"- The untrained base model scores {base_score:.4f}: a finding about training choices only "
            "matters where the trained scores differ from each other by more than their noise."
        )
    return notes
