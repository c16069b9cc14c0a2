"""Ray Tune studies: search-space parsing and validation, ASHA over Train-per-trial runs, a crashing trial,
resume of an interrupted study, and the best job YAML loading and running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from ray import tune

from rtrain.any_config import resolve_any
from rtrain.cli import main
from rtrain.config import ConfigError, resolve_job
from rtrain.tune.space import param_space, search_algorithm
from rtrain.tune.study import bundle_label, load_study

from tiny import job_dict, own_lines, pair_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def base_job(tmp_path: Path, **sections) -> dict:
    """A tiny-model job with an eval section (paths need not exist for validation)."""
    job = job_dict(tmp_path / "model", tmp_path / "pairs.jsonl", tmp_path / "runs", **sections)
    job["eval"] = {"suite": str(tmp_path / "suite.yaml"), "every_steps": 2}
    return job


def study_dict(tmp_path: Path, **keys) -> dict:
    study = {
        "name": "s",
        "base_job": base_job(tmp_path),
        "search_space": {"train.learning_rate": {"grid": [1e-3, 5e-3]}, "loss.negatives_per_query": {"grid": [0, 1]}},
        "storage_path": str(tmp_path / "tune"),
    }
    study.update(keys)
    return study


def problems(tmp_path: Path, **keys) -> str:
    with pytest.raises(ConfigError) as err:
        load_study(study_dict(tmp_path, **keys), cwd=tmp_path)
    return str(err.value)


# ------------------------------------------------------------------------------------------------
# parsing and validation (no Ray)
# ------------------------------------------------------------------------------------------------


def test_search_space_parses_to_tune_domains(tmp_path: Path) -> None:
    space = {
        "train.learning_rate": {"loguniform": [1e-5, 1e-2]},
        "loss.temperature": {"uniform": [0.01, 0.1]},
        "lora.r": {"randint": [4, 8]},
        "loss.negatives_per_query": {"choice": [0, 1, 3]},
        "mix": {"choice": [{"loss.symmetric": True, "loss.temperature": 0.02}, {"loss.symmetric": False}]},
    }
    study = load_study(study_dict(tmp_path, search_space=space, search_alg="random", num_samples=3), cwd=tmp_path)
    domains = param_space(study.config)
    assert domains["train.learning_rate"].lower == 1e-5 and domains["train.learning_rate"].upper == 1e-2
    assert (domains["lora.r"].lower, domains["lora.r"].upper) == (4, 9)  # the study's bounds are inclusive
    assert domains["loss.negatives_per_query"].categories == [0, 1, 3]
    label = bundle_label({"loss.symmetric": True, "loss.temperature": 0.02})
    assert label in domains["mix"].categories
    overrides = study.sampled_overrides({"mix": label, "lora.r": 5})
    assert overrides == {"loss.symmetric": True, "loss.temperature": 0.02, "lora.r": 5}
    job = study.job({"mix": label, "lora.r": 5, "train.learning_rate": 3e-4})
    assert job.loss.symmetric and job.loss.temperature == 0.02 and job.lora.r == 5
    grid = load_study(study_dict(tmp_path), cwd=tmp_path)
    assert param_space(grid.config)["loss.negatives_per_query"] == tune.grid_search([0, 1])
    assert type(search_algorithm(grid.config)).__name__ == "BasicVariantGenerator"


def test_dirichlet_weights_and_synth_placeholders(tmp_path: Path) -> None:
    job = base_job(
        tmp_path,
        data={
            "train_files": [],
            "sources": [
                {"name": "a", "files": ["{synth.pairs}/train.parquet"], "weight": 1.0},
                {"name": "b", "files": ["{synth.pairs}/train.parquet"], "weight": 1.0},
            ],
        },
    )
    study = load_study(
        study_dict(
            tmp_path,
            base_job=job,
            search_alg="random",
            synth={"pairs": {"languages": ["en"], "tasks": ["retrieval"], "examples_per_task_language": 4}},
            search_space={"data.sources.0.weight": {"dirichlet": 1.0}, "data.sources.1.weight": {"dirichlet": 1.0}},
        ),
        cwd=tmp_path,
    )
    resolved = study.job({"data.sources.0.weight": 0.3, "data.sources.1.weight": 2.0})
    folder = study.synth_dirs()["pairs"]
    assert folder.parent == tmp_path / "tune" / "_data" and folder.name.startswith("synth-pairs-")
    assert resolved.data.sources[0].files == [f"{folder}/train.parquet"]
    assert [s.weight for s in resolved.data.sources] == [0.3, 2.0]
    bundled = load_study(
        study_dict(
            tmp_path,
            base_job=job,
            synth=study.config.model_dump()["synth"],
            search_space={"src": {"grid": [{"data.sources.1.files": ["{synth.pairs}/heldout.parquet"]}]}},
        ),
        cwd=tmp_path,
    )
    label = param_space(bundled.config)["src"]["grid_search"][0]  # the value as written, placeholders filled per trial
    assert bundled.job({"src": label}).data.sources[1].files == [f"{folder}/heldout.parquet"]
    draws = [param_space(study.config)["data.sources.0.weight"].func(None) for _ in range(200)]
    assert min(draws) > 0 and 0.8 < sum(draws) / len(draws) < 1.2  # Gamma(1, 1) has mean 1


def test_unknown_keys_empty_choices_and_bad_ranges_are_reported(tmp_path: Path) -> None:
    msg = problems(tmp_path, serch_alg="grid")
    assert "serch_alg = 'grid': unknown key" in msg and "search_alg" in msg
    assert "choice: [] is empty" in problems(tmp_path, search_space={"lora.r": {"choice": []}}, search_alg="random")
    assert "lo must be < hi" in problems(
        tmp_path, search_space={"loss.temperature": {"uniform": [0.1, 0.1]}}, search_alg="random"
    )
    assert "both bounds must be > 0" in problems(
        tmp_path, search_space={"train.learning_rate": {"loguniform": [0, 1]}}, search_alg="random"
    )
    assert "exactly one of" in problems(tmp_path, search_space={"lora.r": {"grid": [4], "choice": [8]}})
    assert "search_space = {}: Dictionary should have at least 1 item" in problems(tmp_path, search_space={})


def test_search_space_keys_are_checked_against_the_job(tmp_path: Path) -> None:
    msg = problems(
        tmp_path,
        search_space={
            "loss.negatives_perquery": {"grid": [1]},  # typo in a job key
            "train.learning_rate": {"grid": [1e-3, -1.0]},  # one bad value
            "data.sources.2.weight": {"grid": [1.0]},  # a list index the job does not have
        },
    )
    assert "3 problem(s)" in msg
    assert "loss.negatives_perquery = 1: unknown key" in msg and "negatives_per_query" in msg
    assert "search_space.train.learning_rate = -1.0" in msg and "greater than 0" in msg
    assert "search_space.data.sources.2.weight = 1.0" in msg and "valid list" in msg
    msg = problems(tmp_path, overrides={"train.lr": 1})
    assert "base_job base_job + overrides: train.lr = 1: unknown key" in msg  # one problem: one line


def test_algorithm_scheduler_metric_and_managed_keys_are_checked(tmp_path: Path) -> None:
    assert "make them grid axes or set search_alg: random" in problems(
        tmp_path, search_space={"lora.r": {"choice": [4, 8]}}
    )
    assert "cannot sample" in problems(tmp_path, search_alg="optuna")
    assert "does not work with Ray Train v2" in problems(tmp_path, scheduler={"type": "pbt"})
    no_eval = base_job(tmp_path)
    del no_eval["eval"]
    assert "has no eval section" in problems(tmp_path, base_job=no_eval)
    load_study(study_dict(tmp_path, base_job=no_eval, metric="loss", mode="min"), cwd=tmp_path)
    assert "set per trial by the study" in problems(tmp_path, overrides={"output.name": "x"})
    assert "bundle's values must be non-empty mappings" in problems(tmp_path, search_space={"mix": {"grid": [1, 2]}})
    assert "names no dataset" in problems(tmp_path, overrides={"data.train_files": ["{synth.nope}/train.parquet"]})


def test_optuna_searcher_or_a_clear_install_error(tmp_path: Path) -> None:
    study = load_study(
        study_dict(tmp_path, search_alg="optuna", num_samples=4, search_space={"lora.r": {"choice": [4, 8]}}),
        cwd=tmp_path,
    )
    try:
        import optuna  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="search_alg 'optuna' needs its package: pip install optuna"):
            search_algorithm(study.config)
    else:
        assert type(search_algorithm(study.config)).__name__ == "OptunaSearch"


def test_variants_and_cli_overrides(tmp_path: Path) -> None:
    data = study_dict(
        tmp_path,
        variants={
            "cluster": {
                "search_space": {"loss.negatives_per_query": {"grid": [0, 1, 3, 7]}, "train.learning_rate": None},
                "trial": {"num_workers": 4, "use_gpu": True},
            }
        },
    )
    study = load_study(
        data, variant="cluster", overrides=["job.train.max_steps=3", "max_concurrent_trials=4"], cwd=tmp_path
    )
    assert study.config.name == "s-cluster"
    assert list(study.config.search_space) == ["loss.negatives_per_query"]
    assert study.config.search_space["loss.negatives_per_query"].grid == [0, 1, 3, 7]
    job = study.job({"loss.negatives_per_query": 7})
    assert (job.scaling.num_workers, job.scaling.use_gpu, job.train.max_steps) == (4, True, 3)
    assert study.config.max_concurrent_trials == 4
    with pytest.raises(ConfigError, match="variant 'gpu' is not defined; defined variants: \\['cluster'\\]"):
        load_study(data, variant="gpu", cwd=tmp_path)
    with pytest.raises(ConfigError, match="edit the study file"):
        load_study(data, overrides=["search_space.lora.r.grid=[4]"], cwd=tmp_path)


def test_a_pipeline_as_base_job_trains_on_its_workdir_files(tmp_path: Path) -> None:
    job = base_job(
        tmp_path,
        data={
            "train_files": [],
            "sources": [
                {"name": "synth", "files": ["synth/train.parquet"], "weight": 1},
                {"name": "mined", "files": ["mined"], "weight": 2},
            ],
        },
    )
    job = {k: v for k, v in job.items() if k not in ("output", "name")}
    job["data"].pop("train_files")
    pipeline = tmp_path / "recipe.yaml"
    pipeline.write_text(
        yaml.safe_dump({"name": "recipe", "workdir": str(tmp_path / "w"), "stages": {"train": {"job": job}}})
    )
    study = load_study(study_dict(tmp_path, base_job=str(pipeline)), cwd=tmp_path)
    trial = study.job({"train.learning_rate": 1e-3, "loss.negatives_per_query": 1})
    assert [(s.name, s.files, s.weight) for s in trial.data.sources] == [
        ("synth", [str(tmp_path / "w" / "synth" / "train.parquet")], 1.0),
        ("mined", [str(tmp_path / "w" / "mined")], 2.0),
    ]
    assert trial.name == "recipe" and trial.train.learning_rate == 1e-3
    pipeline.write_text(
        yaml.safe_dump({"name": "recipe", "workdir": "w", "stages": {"train": {"job": job, "bogus": 1}}})
    )
    assert "bogus" in problems(tmp_path, base_job=str(pipeline))


def test_trial_jobs_carry_absolute_paths_into_the_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a trial's Train worker runs in another folder: every relative path must be absolute, the suite's too
    from rtrain.eval.suite import load_suite
    from rtrain.train.job_paths import absolute_paths

    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "dev.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "dev",
                "data_root": "shared",
                "tasks": [
                    {"kind": "retrieval_pairs", "path": "held/a.parquet"},
                    {"kind": "retrieval_pairs", "name": "b", "path": "/abs/b.parquet"},
                    {"kind": "parallel", "pairs": [{"name": "de-en", "src": "p/de.txt", "tgt": "p/en.txt"}]},
                ],
            }
        )
    )
    job = base_job(tmp_path)
    job["data"]["train_files"] = ["pairs.jsonl"]
    job["eval"] = {"suite": "suites/dev.yaml", "overrides": ["tasks.1.limit=5"]}
    study = load_study(study_dict(tmp_path, base_job=job), cwd=tmp_path)
    monkeypatch.chdir(tmp_path / "suites")  # somewhere else, as a trial worker is
    cfg = absolute_paths(study.job({"train.learning_rate": 1e-3, "loss.negatives_per_query": 1}), tmp_path)
    suite = load_suite(cfg.eval.suite, cfg.eval.overrides)
    assert cfg.data.train_files == [str(tmp_path / "pairs.jsonl")] and cfg.eval.suite == str(
        tmp_path / "suites/dev.yaml"
    )
    assert suite.data_root == str(tmp_path / "shared") and suite.tasks[0].path == str(tmp_path / "held/a.parquet")
    assert suite.tasks[1].path == "/abs/b.parquet" and suite.tasks[1].limit == 5
    assert (suite.tasks[2].pairs[0].src, suite.tasks[2].pairs[0].tgt) == (
        str(tmp_path / "p/de.txt"),
        str(tmp_path / "p/en.txt"),
    )
    # a trial is scored as trained (the study scores the base once): no step-0 baseline that selection could keep
    from rtrain.tune.trial import TrialContext, trial_job

    assert study.job({}).eval.baseline is True
    trial = trial_job(TrialContext(study=study, metric="eval_score"), {"train.learning_rate": 1e-3}, "t0")
    assert trial.eval.baseline is False and trial.eval.suite == str(tmp_path / "suites/dev.yaml")


def test_a_scaling_study_gets_efficiency_per_worker_and_its_plots(tmp_path: Path) -> None:
    """pairs/s per worker against the smallest worker count's, and a throughput and an efficiency plot."""
    from rtrain.tune.plots import plot_knobs
    from rtrain.tune.results import add_scaling_efficiency

    study = load_study(study_dict(tmp_path, search_space={"scaling.num_workers": {"grid": [1, 2, 4]}}), cwd=tmp_path)
    table = pd.DataFrame(
        {
            "trial_id": ["a", "b", "c", "d"],
            "status": ["completed", "completed", "completed", "failed"],
            "scaling.num_workers": [1, 2, 4, 4],
            "num_workers": [1, 2, 4, 4],
            "pairs_per_s": [100.0, 150.0, 320.0, None],
            "eval_score_best": [0.5, 0.5, 0.4, None],
        }
    )
    table = add_scaling_efficiency(table)
    assert table["scaling_efficiency"].tolist()[:3] == [1.0, 0.75, 0.8]
    paths = plot_knobs(study, table, tmp_path / "plots")
    names = [p.name for p in paths]
    assert names == [
        "eval_score_vs_scaling.num_workers.png",
        "pairs_per_s_vs_num_workers.png",
        "scaling_efficiency_vs_num_workers.png",
    ], names
    assert all(p.stat().st_size > 1000 for p in paths)


def test_shipped_studies_validate_with_every_variant() -> None:
    files = sorted((ROOT / "tuning").glob("*.yaml"))
    names = {p.name for p in files}
    assert {
        "negatives.yaml",
        "data_mix.yaml",
        "diversity.yaml",
        "data_scale.yaml",
        "paper_ablations.yaml",
        "scaling.yaml",
    } <= names
    for path in files:
        data = yaml.safe_load(path.read_text())
        assert "cluster" in data.get("variants", {}), f"{path.name} has no cluster variant"
        resolve_any(path)


def outcome_of(rows: list[dict], tmp_path: Path):
    from rtrain.tune.results import StudyOutcome

    table = pd.DataFrame([{"status": "completed", **r} for r in rows])
    return StudyOutcome(tmp_path, table, None, None, [], False)


def test_report_verdicts_follow_the_numbers(tmp_path: Path) -> None:
    from rtrain.tune.report import diversity_finding, negatives_finding, scale_finding

    k = "loss.negatives_per_query"
    lines, plot = negatives_finding(
        outcome_of(
            [{k: 0, "eval_score_last": 0.50}, {k: 1, "eval_score_last": 0.53}, {k: 3, "eval_score_last": 0.55}],
            tmp_path,
        ),
        "eval_score",
        0.4,
        tmp_path,
    )
    assert "**Verdict: holds.**" in lines[-1] and "+0.0300 to +0.0500" in lines[-1] and "unreplicated" in lines[-1]
    assert plot.is_file()
    lines, _ = negatives_finding(
        outcome_of(
            [{k: 0, "eval_score_last": 0.56}, {k: 1, "eval_score_last": 0.53}, {k: 3, "eval_score_last": 0.55}],
            tmp_path,
        ),
        "eval_score",
        None,
        tmp_path,
    )
    assert "**Verdict: does not hold here.**" in lines[-1]
    seeds = [
        {k: kk, "train.seed": seed, "eval_score_last": v}
        for kk, seed, v in [(0, 0, 0.50), (0, 1, 0.52), (1, 0, 0.51), (1, 1, 0.53)]
    ]
    lines, _ = negatives_finding(outcome_of(seeds, tmp_path), "eval_score", None, tmp_path)
    assert "**Verdict: inconclusive.**" in lines[-1] and "(pooled std) 0.0141" in lines[-1]  # +0.01 is within noise

    t, lang = "data.tasks", "data.languages"
    grid = [
        (json.dumps(["retrieval"]), json.dumps(["en"]), 0.50),
        (json.dumps(["retrieval"]), None, 0.51),
        (None, json.dumps(["en"]), 0.56),
        (None, None, 0.57),
    ]
    lines, plot = diversity_finding(
        outcome_of([{t: a, lang: b, "eval_score_last": v} for a, b, v in grid], tmp_path), "eval_score", tmp_path
    )
    assert "by +0.0600" in lines[-3] and "by +0.0100" in lines[-3] and "**Verdict: holds.**" in lines[-1]
    assert lines[2].startswith("| 1 | 0.5 | 0.51 |") and plot.name == "diversity.png"

    r = "data.max_rows"
    plateau = [
        {r: 128, "eval_score_last": 0.50},
        {r: 512, "eval_score_last": 0.54},
        {r: 2048, "eval_score_last": 0.545},
    ]
    lines, _ = scale_finding(outcome_of(plateau, tmp_path), "eval_score", None, tmp_path)
    assert "**Verdict: holds.**" in lines[-1] and "+0.0200" in lines[-1] and "+0.0025" in lines[-1]
    steady = [{r: 128, "eval_score_last": 0.50}, {r: 512, "eval_score_last": 0.54}, {r: 2048, "eval_score_last": 0.58}]
    lines, _ = scale_finding(outcome_of(steady, tmp_path), "eval_score", None, tmp_path)
    assert "**Verdict: does not hold here.**" in lines[-1]


# ------------------------------------------------------------------------------------------------
# end to end on the tiny model (Ray Tune, a Ray Train run per trial)
# ------------------------------------------------------------------------------------------------


def tiny_study(tiny_model: Path, tiny_pairs: Path, folder: Path, **keys) -> dict:
    """A study over a 1-worker tiny-model job evaluated every 3 steps on held-out toy pairs."""
    heldout = write_jsonl(pair_rows(40, negatives=2, seed=7), folder / "heldout.jsonl")
    suite = folder / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "tiny", "tasks": [{"kind": "retrieval_pairs", "path": str(heldout)}]}))
    job = job_dict(
        tiny_model,
        tiny_pairs,
        folder / "unused",
        train={"backend": "ddp", "max_steps": 9, "checkpoint_every_steps": 100, "log_every_steps": 3},
        scaling={"num_workers": 1, "cpus_per_worker": 0.4},  # 2 trials leave Ray Data a CPU
        output={"export": False, "num_checkpoints_to_keep": 1},
    )
    job["eval"] = {"suite": str(suite), "every_steps": 3}
    study = {
        "name": "tiny",
        "base_job": job,
        "storage_path": str(folder / "tune"),
        "max_concurrent_trials": 2,
        "search_space": {"train.learning_rate": {"grid": [5e-3]}},
    }
    study.update(keys)
    return study


@pytest.fixture(scope="module")
def asha_study(tiny_model: Path, tiny_pairs: Path, tmp_path_factory: pytest.TempPathFactory, ray_local):
    """Four trials, two at a time, ASHA on eval_score from step 3: two good setups, a weak one (CLS pooling of
    the untrained model, barely trained, scores far lower), and one whose model path does not exist (crashes on
    every attempt)."""
    from rtrain.tune.runner import run_study

    folder = tmp_path_factory.mktemp("asha")
    setups = [
        {"model.pooling": "mean"},
        {"model.pooling": "mean", "train.learning_rate": 1e-2},
        {"model.pooling": "cls", "train.learning_rate": 1e-9},
        {"model.name_or_path": str(folder / "no-such-model")},
    ]
    study = load_study(
        tiny_study(
            tiny_model,
            tiny_pairs,
            folder,
            name="asha",
            search_space={"setup": {"grid": setups}},
            scheduler={"type": "asha", "grace_period": 3, "reduction_factor": 2},
            max_failures=1,
            wandb={"enabled": True, "project": "rtrain-tests"},
        ),
        cwd=folder,
    )
    started = time.perf_counter()
    outcome = run_study(study)
    return study, outcome, {bundle_label(s): s for s in setups}, time.perf_counter() - started


def rows_by_setup(outcome, labels: dict) -> dict[str, dict]:
    return {json.dumps(labels[r["setup"]], sort_keys=True): r for r in outcome.table.to_dict("records")}


def test_asha_stops_the_weak_trial_and_the_study_finishes(asha_study, ray_local) -> None:
    study, outcome, labels, seconds = asha_study
    rows = rows_by_setup(outcome, labels)
    weak = rows[json.dumps({"model.pooling": "cls", "train.learning_rate": 1e-9})]
    assert weak["status"] == "stopped" and weak["step"] == 3, weak  # stopped at the first rung, of 9 planned steps
    good = [
        rows[json.dumps(s, sort_keys=True)]
        for s in ({"model.pooling": "mean"}, {"model.pooling": "mean", "train.learning_rate": 1e-2})
    ]
    assert any(r["status"] == "completed" and r["step"] == 9 for r in good), good
    assert max(r["eval_score_best"] for r in good) > weak["eval_score_best"]
    assert outcome.best["trial_id"] in {r["trial_id"] for r in good}
    assert (study.study_dir / "study_done.json").is_file() and not outcome.interrupted
    assert not list((study.study_dir / "trials").glob("*.pgs"))  # every trial's worker placement group was freed
    assert ray_local.available_resources().get("CPU", 0) == pytest.approx(2.0)
    print(f"4-trial ASHA study: {seconds:.0f} s")


def test_a_crashing_trial_is_retried_then_recorded_failed(asha_study) -> None:
    study, outcome, labels, _ = asha_study
    crashed = [r for r in outcome.table.to_dict("records") if "name_or_path" in r["setup"]][0]
    assert crashed["status"] == "failed" and crashed["attempts"] == 2  # max_failures=1: one retry
    assert "does not exist: fix model.name_or_path" in crashed["error"]
    assert (outcome.table["status"] != "failed").sum() == 3  # the others ran to their end or were stopped by ASHA


def test_results_table_plots_and_one_wandb_run_per_trial(asha_study) -> None:
    study, outcome, labels, _ = asha_study
    csv = pd.read_csv(study.study_dir / "trials.csv")
    parquet = pd.read_parquet(study.study_dir / "trials.parquet")
    assert len(csv) == len(parquet) == 4 and list(csv.columns) == list(parquet.columns)
    for column in ("eval_score_best", "eval_score_last", "pairs_per_s", "worker_seconds", "time_total_s", "attempts"):
        assert column in csv
    ran = csv[csv["status"] != "failed"]
    assert (ran["pairs_per_s"] > 0).all() and (ran["worker_seconds"] > 0).all()
    assert [p.name for p in outcome.plots] == ["eval_score_vs_setup.png"] and outcome.plots[0].stat().st_size > 1000
    assert "Best: trial" in (study.study_dir / "summary.md").read_text()
    for row in ran.to_dict("records"):
        run_dir = Path(row["run_dir"])
        job = yaml.safe_load((run_dir / "job.yaml").read_text())
        assert job["logging"]["group"] == "asha" and "asha" in job["logging"]["tags"]
        assert len(list((run_dir / "wandb_files").rglob("offline-run-*"))) == 1, run_dir


def test_best_job_yaml_loads_and_runs(asha_study, tmp_path: Path, ray_local) -> None:
    from rtrain.train.trainer import train

    study, outcome, labels, _ = asha_study
    text = outcome.best_job.read_text()
    assert text.startswith("# Best job of study asha")
    cfg = resolve_job(outcome.best_job, [f"output.storage_path={tmp_path}", "output.name=best", "train.max_steps=3"])
    best = labels[outcome.best["setup"]]
    assert cfg.model.pooling == "mean" and cfg.train.learning_rate == best.get("train.learning_rate", 1e-3)
    assert cfg.logging.group is None and cfg.output.name == "best"  # the study's per-trial settings are not kept
    result = train(cfg)
    assert (result.checkpoint / "metrics.json").is_file() and "eval_score" in result.metrics


def test_concurrency_that_starves_ray_data_is_refused(
    tiny_model: Path, tiny_pairs: Path, tmp_path: Path, ray_local
) -> None:
    from rtrain.tune.runner import check_cpu_headroom, trial_cpus

    study = load_study(
        tiny_study(
            tiny_model,
            tiny_pairs,
            tmp_path,
            max_concurrent_trials=2,
            search_space={"scaling.num_workers": {"grid": [1, 2]}},
        ),
        cwd=tmp_path,
    )
    assert trial_cpus(study) == pytest.approx(2 * 0.4 + 0.01)  # the largest swept worker count
    with pytest.raises(ConfigError, match="leaves less than 1 CPU for Ray Data's read tasks"):
        check_cpu_headroom(study)  # 2 x 0.81 of 2 CPUs
    check_cpu_headroom(
        load_study(
            tiny_study(
                tiny_model,
                tiny_pairs,
                tmp_path,
                max_concurrent_trials=1,
                search_space={"scaling.num_workers": {"grid": [1, 2]}},
            ),
            cwd=tmp_path,
        )
    )


def test_tune_console_shows_a_line_per_trial_and_logs_the_rest(
    tiny_model: Path, tiny_pairs: Path, tmp_path: Path, ray_local, capfd: pytest.CaptureFixture[str]
) -> None:
    """`rtrain tune` is quiet: one line per trial start, end (with the score and the best so far) and failure,
    then the results; Tune's status tables and the trials' worker output go to the study's rtrain.log."""
    capfd.readouterr()
    setups = [{"model.pooling": "mean"}, {"model.name_or_path": str(tmp_path / "no-such-model")}]
    study = tiny_study(tiny_model, tiny_pairs, tmp_path, name="quiet", search_space={"setup": {"grid": setups}})
    study["base_job"]["train"]["max_steps"] = 3
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(study))
    assert main(["tune", str(study_file)]) == 1  # one trial failed (after its one retry: max_failures 1)
    captured = capfd.readouterr()
    err, out = own_lines(captured.err), own_lines(captured.out)
    folder = tmp_path / "tune" / "quiet"
    records = {json.loads(p.read_text())["trial_id"]: json.loads(p.read_text()) for p in folder.glob("trials/*.json")}
    good, bad = sorted(records, key=lambda t: "error" in records[t])
    score = records[good]["metrics"]["eval_score"]
    lines = err.splitlines()
    assert f'trial {good} started: setup=model.pooling="mean"' in lines, err
    assert any(
        line.startswith(f"trial {good} ended after ")
        and f"at step 3: eval_score {score:.4f}, best so far {score:.4f} (trial {good}); " in line
        for line in lines
    ), err
    failed = [line for line in lines if line.startswith(f"trial {bad} failed after ")]
    assert len(failed) == 2 and "retrying: FileNotFoundError: model path" in failed[0], err
    assert failed[1].endswith("does not exist: fix model.name_or_path; 1 of 2 trials ended") or failed[1].endswith(
        "does not exist: fix model.name_or_path; 2 of 2 trials ended"
    ), err
    assert sum(line.endswith("of 2 trials ended") for line in lines) == 2, err
    assert lines[-2:] == [
        f"1 trial(s) failed; their errors are in the table and in {folder / 'trials'}",
        f"full log: {folder / 'rtrain.log'}",
    ], err
    assert "Trial status" not in err + out and "Traceback" not in err, err  # Tune's tables are in the log
    assert f"study folder: {folder}" in out and f"best job: {folder / 'best_job.yaml'}" in out, out
    log_text = (folder / "rtrain.log").read_text()
    assert "Trial status" in log_text and f"trial {good} started" in log_text


@pytest.mark.slow
def test_resume_runs_only_the_trials_an_interrupt_left(tiny_model: Path, tiny_pairs: Path, tmp_path: Path) -> None:
    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        yaml.safe_dump(
            tiny_study(
                tiny_model,
                tiny_pairs,
                tmp_path,
                name="resumable",
                max_concurrent_trials=1,
                search_space={"train.learning_rate": {"grid": [5e-3, 4e-3, 3e-3]}},
            )
        )
    )
    folder = tmp_path / "tune" / "resumable"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    output = (tmp_path / "tune.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtrain.cli", "tune", str(study_file)],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 400
    finished: list[Path] = []
    while time.time() < deadline and not finished:
        finished = [p for p in folder.glob("trials/*.json") if "finished" in json.loads(p.read_text() or "{}")]
        time.sleep(2)
    assert finished, "no trial finished in time"
    proc.send_signal(signal.SIGINT)  # Ctrl-C: Tune saves its state and stops
    assert proc.wait(timeout=180) == 130, (tmp_path / "tune.log").read_text()[-3000:]
    assert not (folder / "study_done.json").exists()
    first = finished[0].stem
    log_before = (folder / "runs" / first / "train_log.jsonl").read_text()
    assert main(["tune", str(study_file), "--resume"]) == 0
    table = pd.read_csv(folder / "trials.csv")
    assert list(table["status"]) == ["completed"] * 3
    assert (folder / "runs" / first / "train_log.jsonl").read_text() == log_before  # the finished trial did not rerun
    assert table.set_index("trial_id").loc[first, "attempts"] == 1
    assert main(["tune", str(study_file)]) == 2  # a second fresh start is refused: the folder exists
