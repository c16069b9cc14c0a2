"""The pipeline's eval stage: base vs retrofitted model on held-out pairs, FLORES bitext and an eval suite."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from rtrain import console
from rtrain.checkpoint import checkpoint_embedding_model, selection
from rtrain.config.schema import JobConfig
from rtrain.eval import BitextMiningEvaluator, RetrievalEvaluator
from rtrain.eval.readers import default_flores_root
from rtrain.eval.report import bar_chart, format_table, overall_score, overview_table
from rtrain.models.encoder import EmbeddingModel
from rtrain.pipeline.schema import EvalStage

log = logging.getLogger("rtrain.pipeline")

SUMMARY = "summary.md"
RESULTS = "results.json"


def _evaluators(stage: EvalStage, heldout: Path) -> dict[str, Any]:
    evaluators: dict[str, Any] = {
        "heldout_retrieval": RetrievalEvaluator.from_pairs(
            heldout, name="heldout_retrieval", batch_size=stage.batch_size
        )
    }
    if stage.flores is not None:
        root = Path(stage.flores.root) if stage.flores.root else default_flores_root()
        if root.is_dir():
            evaluators["flores_bitext"] = BitextMiningEvaluator.from_flores(
                stage.flores.languages,
                root=root,
                split=stage.flores.split,
                limit=stage.flores.limit,
                name="flores_bitext",
                batch_size=stage.batch_size,
            )
        else:
            log.warning(f"FLORES folder {root} not found: skipping bitext mining (set stages.eval.flores.root)")
    return evaluators


def run_eval(
    stage: EvalStage, heldout: Path | None, run_dir: Path, output: Path, base_job: JobConfig | None
) -> dict[str, Any]:
    """Score each model with each evaluator (results.json, summary.md, a bar chart per task) and with
    the stage's eval suites (under `<output>/suite`, or `<output>/suite-<name>` each when there are several,
    as `rtrain eval` writes them)."""
    models: dict[str, Any] = {}
    if stage.compare_base:
        if base_job is None:
            raise ValueError("stages.eval.compare_base needs a train stage (its job names the base model)")
        models["base"] = EmbeddingModel.load(base_job.model)
    models["retrofitted"] = checkpoint_embedding_model(run_dir)
    output.mkdir(parents=True, exist_ok=True)
    sections = []
    overview: dict[str, dict[str, float]] = {}  # "task (metric)" -> {model: overall}: what the console shows
    if heldout is not None:
        evaluators = _evaluators(stage, heldout)
        results: dict[str, dict[str, Any]] = {task: {} for task in evaluators}
        for task, evaluator in evaluators.items():
            for model_name, model in models.items():
                log.info(f"[eval] {task}: {model_name}")
                results[task][model_name] = evaluator(model)
        (output / RESULTS).write_text(json.dumps(results, indent=2))
        for task, by_model in results.items():
            metric = evaluators[task].primary_metric
            sections.append(f"## {task} ({metric})\n\n{format_table(by_model, metric=metric)}\n")
            overview[f"{task} ({metric})"] = {m: overall_score(out, metric) for m, out in by_model.items()}
            bar_chart(by_model, metric, output / f"{task}.png", title=f"{task}: {metric}")
    if stage.suites:
        from rtrain.eval.suite import load_suite, run_suite

        for n, path in enumerate(stage.suites):
            suite = load_suite(path, stage.suite_overrides if n == 0 else [])
            folder = output / ("suite" if len(stage.suites) == 1 else f"suite-{suite.name}")
            log.info(f"[eval] suite {suite.name}: {', '.join(models)}")
            ran = run_suite(suite, models, folder)
            sections.append(ran["summary"])
            metrics = {spec.task_name: spec.primary_metric for spec in suite.tasks}
            for task, by_model in ran["results"].items():
                label = f"{suite.name}/{task} ({metrics.get(task, 'main_score')})"
                overview[label] = {m: overall_score(out, "main_score") for m, out in by_model.items()}
    chosen = selection(run_dir)
    if chosen is not None:  # said first: a reader must not take the base model for a retrofit
        sections.insert(0, f"**Checkpoint selection:** {chosen.describe()}.\n")
    summary = "\n".join(sections)
    (output / SUMMARY).write_text(summary)
    shown = [sections[0]] if chosen is not None else []  # the console: one line per task, the rest in summary.md
    shown += [overview_table(overview), f"\nper-language tables: {output / SUMMARY}"] if overview else []
    console.show("\n".join(shown))
    return {"results": str(output / RESULTS), "summary": summary}
