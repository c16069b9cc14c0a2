"""A finished (or interrupted) study's results: the trials table, the best job YAML, plots and a summary.

Written into the study folder:
- `trials.csv` and `trials.parquet`: one row per trial: status, attempts, each swept value, the
  metric (best and last evaluation), loss, throughput (median pairs/s and tokens/s of the run's log),
  time, cost in worker-seconds (trial time x workers), time to `target`, error.
- `best_job.yaml`: the base job with the best trial's values, validated, ready for `rtrain train`.
- `plots/<metric>_vs_<key>.png`: the metric against each swept key.
- `summary.md`: the table and the best trial.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from rtrain.checkpoint import LOG_FILE, job_file
from rtrain.config.load import dump_yaml, resolve_job
from rtrain.train.job_paths import absolute_paths
from rtrain.tune.cleanup import ended_file
from rtrain.tune.study import Study
from rtrain.tune.trial import RECORDS_DIR, RUNS_DIR, read_record

TABLE = "trials"
BEST_JOB = "best_job.yaml"
SUMMARY = "summary.md"
PLOTS = "plots"


@dataclass
class StudyOutcome:
    """Where a study's results are and what won."""

    study_dir: Path
    table: pd.DataFrame
    best: dict[str, Any] | None  # the best trial's row
    best_job: Path | None
    plots: list[Path]
    interrupted: bool


def cell(value: Any) -> Any:
    """A table cell: scalars as they are, anything else as JSON (so CSV and Parquet agree)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True)


def _log_throughput(run_dir: Path) -> dict[str, float]:
    """Median pairs/s and tokens/s over the run's log lines (robust to a slow first window)."""
    path = run_dir / LOG_FILE
    if not path.is_file():
        return {}
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = {}
    for key in ("pairs_per_s", "tokens_per_s"):
        values = [r[key] for r in lines if isinstance(r.get(key), (int, float))]
        if values:
            out[key] = float(statistics.median(values))
    return out


def _job_scaling(run_dir: Path) -> dict[str, Any]:
    path = job_file(run_dir)
    if not path.is_file():
        return {}
    scaling = (yaml.safe_load(path.read_text()) or {}).get("scaling") or {}
    return {"num_workers": scaling.get("num_workers"), "cpus_per_worker": scaling.get("cpus_per_worker")}


def trial_row(study: Study, result: Any) -> dict[str, Any]:
    """One table row from a Tune `Result`, the trial's record and its run folder."""
    cfg = study.config
    trial_id = Path(result.path).name
    record = read_record(study.study_dir / RECORDS_DIR / f"{trial_id}.json")
    metrics = dict(result.metrics or {})
    history = result.metrics_dataframe
    scores = history[cfg.metric].dropna() if history is not None and cfg.metric in history else pd.Series(dtype=float)
    if result.error is not None:
        status = "failed"
    elif record.get("finished"):
        status = "completed"
    elif ended_file(study.study_dir / RECORDS_DIR, trial_id).is_file():
        status = "stopped"  # early, by the scheduler (ASHA)
    else:
        status = "interrupted"  # Ctrl-C or the time budget: --resume continues it
    row: dict[str, Any] = {"trial_id": trial_id, "status": status, "attempts": record.get("attempts", 0)}
    config = result.config or record.get("sampled") or {}  # a trial that never started has no result yet
    for key in cfg.search_space:
        row[key] = cell(config.get(key))
    best = (scores.max() if cfg.mode == "max" else scores.min()) if len(scores) else math.nan
    row[f"{cfg.metric}_best"] = float(best)
    row[f"{cfg.metric}_last"] = float(scores.iloc[-1]) if len(scores) else math.nan
    row["step"] = metrics.get("step")
    row["loss"] = metrics.get("loss")
    for key, value in sorted(metrics.items()):
        if key.startswith("eval/") and key != cfg.metric:
            row[key] = value
    run_dir = study.study_dir / RUNS_DIR / trial_id
    row.update(_log_throughput(run_dir))
    row.update(_job_scaling(run_dir))
    row["time_total_s"] = metrics.get("time_total_s")
    workers = row.get("num_workers")
    row["worker_seconds"] = row["time_total_s"] * workers if row["time_total_s"] and workers else math.nan
    row["time_to_target_s"] = math.nan
    if cfg.target is not None and history is not None and len(scores):
        hit = scores >= cfg.target if cfg.mode == "max" else scores <= cfg.target
        if hit.any() and "time_total_s" in history:
            row["time_to_target_s"] = float(history.loc[hit.idxmax(), "time_total_s"])
    row["error"] = ""
    if result.error is not None:
        lines = str(result.error).strip().splitlines()
        row["error"] = record.get("error") or (lines[-1] if lines else type(result.error).__name__)
    row["run_dir"] = str(run_dir)
    return row


def expected_trials(study: Study) -> int:
    """How many trials the study makes: num_samples times the product of the grid sizes."""
    count = study.config.num_samples
    for dist in study.config.search_space.values():
        if dist.kind == "grid":
            count *= len(dist.values)
    return count


def add_scaling_efficiency(table: pd.DataFrame) -> pd.DataFrame:
    """pairs/s per worker relative to the smallest worker count's (1.0 = perfect linear scaling)."""
    if "pairs_per_s" not in table or "num_workers" not in table:
        return table
    ok = table[(table["status"] != "failed") & table["pairs_per_s"].notna()]
    if ok["num_workers"].nunique() < 2:
        return table
    base_n = ok["num_workers"].min()
    per_worker = ok[ok["num_workers"] == base_n]["pairs_per_s"].mean() / base_n
    table = table.copy()
    table["scaling_efficiency"] = table["pairs_per_s"] / (table["num_workers"] * per_worker)
    return table


def best_row(study: Study, table: pd.DataFrame) -> dict[str, Any] | None:
    """The best trial by its best evaluation; completed trials first, then stopped ones."""
    column = f"{study.config.metric}_best"
    for statuses in (("completed",), ("completed", "stopped")):
        pool = table[table["status"].isin(statuses) & table[column].notna()]
        if not pool.empty:
            index = pool[column].idxmax() if study.config.mode == "max" else pool[column].idxmin()
            return table.loc[index].to_dict()
    return None


def write_best_job(study: Study, row: dict[str, Any], sampled: dict[str, Any], path: Path) -> Path:
    """The base job + study overrides + the best trial's sampled values, validated, as a runnable job YAML."""
    cfg = absolute_paths(study.job(sampled, where=f"best trial {row['trial_id']}"), study.cwd)
    text = dump_yaml(cfg)
    resolve_job(yaml.safe_load(text), where=str(path))  # what we write must load back
    metric = study.config.metric
    header = [
        f"# Best job of study {study.config.name} (trial {row['trial_id']}): "
        f"{metric} = {row[f'{metric}_best']:.4f} (best evaluation).",
        "# Values from the search: " + ", ".join(f"{k}={v}" for k, v in sampled.items()),
        f"# Run it: rtrain train {path}",
    ]
    path.write_text("\n".join(header) + "\n" + text)
    return path


def _markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(format_cell(v) for v in row) + " |")
    return "\n".join(lines)


def format_cell(value: Any) -> str:
    """Floats to 4 significant digits, missing values blank, the rest as text (pipes escaped)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def write_summary(study: Study, outcome: StudyOutcome) -> Path:
    """summary.md: the study, the best trial, the table (without paths) and the plots."""
    cfg, table = study.config, outcome.table
    lines = [f"# Study {cfg.name}", "", cfg.description.strip(), ""]
    counts = table["status"].value_counts().to_dict()
    lines.append(f"{len(table)} trial(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ".")
    if outcome.interrupted:
        lines.append("The study was interrupted: continue it with `rtrain tune <study.yaml> --resume`.")
    cost = table["worker_seconds"].sum(skipna=True)
    lines.append(f"Cost: {cost:.0f} worker-seconds in all trials.")
    if outcome.best:
        lines += [
            "",
            f"Best: trial {outcome.best['trial_id']}, {cfg.metric} = {outcome.best[f'{cfg.metric}_best']:.4f} "
            f"with "
            + ", ".join(f"`{k}={format_cell(outcome.best[k]) or 'null'}`" for k in cfg.search_space)
            + f"; job: `{BEST_JOB}`.",
        ]
    shown = table.drop(columns=[c for c in ("run_dir",) if c in table])
    lines += ["", _markdown(shown), ""]
    lines += [f"![{p.stem}]({PLOTS}/{p.name})" for p in outcome.plots]
    path = outcome.study_dir / SUMMARY
    path.write_text("\n".join(lines) + "\n")
    return path


def write_results(study: Study, grid: Any) -> StudyOutcome:
    """Table (CSV + Parquet), best job YAML, plots and summary for a Tune ResultGrid."""
    from rtrain.tune.plots import plot_knobs

    table = pd.DataFrame([trial_row(study, r) for r in grid]).sort_values("trial_id").reset_index(drop=True)
    sampled = {Path(r.path).name: dict(r.config or {}) for r in grid}  # the values as Tune gave them (not cells)
    table = add_scaling_efficiency(table)
    out = study.study_dir
    table.to_csv(out / f"{TABLE}.csv", index=False)
    table.to_parquet(out / f"{TABLE}.parquet", index=False)
    best = best_row(study, table)
    best_job = write_best_job(study, best, sampled[best["trial_id"]], out / BEST_JOB) if best else None
    plots = plot_knobs(study, table, out / PLOTS)
    interrupted = len(table) < expected_trials(study) or bool((table["status"] == "interrupted").any())
    outcome = StudyOutcome(out, table, best, best_job, plots, interrupted)
    write_summary(study, outcome)
    return outcome
