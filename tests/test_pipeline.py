"""Pipelines: a tiny quickstart end to end, skip/force logic, partial and foreign outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rtrain.cli import main
from rtrain.config import ConfigError, resolve
from rtrain.pipeline import PipelineConfig, run_pipeline
from rtrain.pipeline.cache import StageError

FLORES = Path(__file__).resolve().parents[2] / "shared" / "data" / "sib200_flores_subset"


def tiny_pipeline(tiny_model: Path, workdir: Path, **train: object) -> dict:
    return {
        "name": "tiny-quickstart",
        "workdir": str(workdir),
        "stages": {
            "synth": {
                "config": {
                    "languages": ["en", "de"],
                    "tasks": ["retrieval", "bitext", "paraphrase"],
                    "examples_per_task_language": 24,
                    "heldout_examples_per_task_language": 6,
                    "negatives_per_row": 1,
                }
            },
            "train": {
                "job": {
                    "model": {"name_or_path": str(tiny_model), "query_max_length": 32, "passage_max_length": 32},
                    "lora": {"r": 4, "alpha": 8},
                    "train": {"batch_size_per_worker": 8, "max_steps": 3, "backend": "ddp", **train},
                    "scaling": {"num_workers": 1, "cpus_per_worker": 1},
                    "logging": {"wandb": False},
                }
            },
            "eval": {"flores": {"languages": ["deu_Latn"], "limit": 20, "root": str(FLORES)}},
            "export": {},
        },
    }


def test_tiny_quickstart_runs_then_skips_then_reruns_what_changed(
    tiny_model: Path, tmp_path: Path, ray_local, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny_pipeline(tiny_model, tmp_path / "w")
    suite = tmp_path / "suite.yaml"  # the eval stage also runs an eval suite over both models
    suite.write_text(
        json.dumps(
            {
                "name": "s",
                "tasks": [
                    {
                        "kind": "retrieval_pairs",
                        "name": "heldout_suite",
                        "path": str(tmp_path / "w" / "synth" / "heldout.parquet"),
                    }
                ],
            }
        )
    )
    dev = tmp_path / "dev.yaml"  # a second suite (e.g. held-out training-role pairs): one folder per suite
    dev.write_text(
        json.dumps(
            {
                "name": "dev",
                "tasks": [
                    {
                        "kind": "retrieval_pairs",
                        "name": "dev_pairs",
                        "path": str(tmp_path / "w" / "synth" / "heldout.parquet"),
                        "limit": 8,
                    }
                ],
            }
        )
    )
    data["stages"]["eval"]["suite"] = [str(suite), str(dev)]
    # selection during training on a suite given by RELATIVE paths (file and rows): workers run elsewhere
    monkeypatch.chdir(tmp_path)
    Path("select.yaml").write_text(
        json.dumps(
            {
                "name": "select",
                "tasks": [
                    {"kind": "retrieval_pairs", "name": "select_pairs", "path": "w/synth/heldout.parquet", "limit": 8}
                ],
            }
        )
    )
    data["stages"]["train"]["job"]["eval"] = {"suite": "select.yaml", "every_steps": 3}
    cfg = resolve(PipelineConfig, data)
    first = run_pipeline(cfg)
    assert set(first) == {"synth", "train", "eval", "export"} and "skipped" not in first.values()
    workdir = tmp_path / "w"
    results = json.loads((workdir / "eval" / "results.json").read_text())
    assert set(results["heldout_retrieval"]) == {"base", "retrofitted"}
    assert set(results["heldout_retrieval"]["base"]["per_language"]) == {"en", "de"}
    if FLORES.is_dir():
        assert "flores_bitext" in results and (workdir / "eval" / "flores_bitext.png").is_file()
    printed = capsys.readouterr().out
    assert "| heldout_retrieval (ndcg_at_10) | " in printed  # one line per task on the console
    assert "| **overall** |" in (workdir / "eval" / "summary.md").read_text()  # the per-language tables
    assert "**Checkpoint selection:** " in printed and "base model" in printed  # selected vs the base, stated
    assert {
        json.loads(line).get("step")
        for line in (workdir / "train" / "train_log.jsonl").read_text().splitlines()
        if "eval_score" in line
    } == {0, 3}
    suite_results = list((workdir / "eval" / "suite-s").rglob("heldout_suite.json"))
    assert len(suite_results) == 2, suite_results  # base and retrofitted
    assert len(list((workdir / "eval" / "suite-dev").rglob("dev_pairs.json"))) == 2
    assert (workdir / "model" / "modules.json").is_file() and (workdir / "model" / "README.md").is_file()

    assert set(run_pipeline(cfg).values()) == {"skipped"}

    changed_data = tiny_pipeline(tiny_model, workdir, learning_rate=1e-3)
    changed_data["stages"]["eval"]["suite"] = str(suite)
    changed = resolve(PipelineConfig, changed_data)
    again = run_pipeline(changed)
    assert again["synth"] == "skipped"
    assert all(again[s] != "skipped" for s in ("train", "eval", "export"))  # downstream of the change


def test_force_partial_and_foreign_outputs(tmp_path: Path, tiny_model: Path) -> None:
    data = tiny_pipeline(tiny_model, tmp_path / "w")
    data["stages"] = {"synth": data["stages"]["synth"]}  # a synth-only pipeline: fast
    cfg = resolve(PipelineConfig, data)
    assert run_pipeline(cfg)["synth"] != "skipped"
    assert run_pipeline(cfg)["synth"] == "skipped"
    assert run_pipeline(cfg, force=True)["synth"] != "skipped"

    # a run stopped half-way: the stage is marked running, so its output is not trusted
    (tmp_path / "w" / ".stages" / "synth.done.json").rename(tmp_path / "w" / ".stages" / "synth.running")
    assert run_pipeline(cfg)["synth"] != "skipped"

    foreign = dict(data, workdir=str(tmp_path / "other"))
    (tmp_path / "other" / "synth").mkdir(parents=True)
    (tmp_path / "other" / "synth" / "notes.txt").write_text("someone else's file")
    with pytest.raises(StageError, match="holds files that pipeline 'tiny-quickstart' did not write"):
        run_pipeline(resolve(PipelineConfig, foreign))
    assert (tmp_path / "other" / "synth" / "notes.txt").is_file()  # nothing deleted

    other_name = dict(data, name="another")
    with pytest.raises(StageError, match="belongs to pipeline 'tiny-quickstart'"):
        run_pipeline(resolve(PipelineConfig, other_name))

    full = resolve(PipelineConfig, tiny_pipeline(tiny_model, tmp_path / "w"))  # --until: the data stages only
    assert run_pipeline(full, until="synth") == {"synth": "skipped"}
    with pytest.raises(
        ConfigError,
        match="--until 'mine': not a stage of pipeline 'tiny-quickstart'; its stages: synth, train, eval, export",
    ):
        run_pipeline(full, until="mine")


def test_bad_pipeline_files_name_the_key(tmp_path: Path, tiny_model: Path) -> None:
    data = tiny_pipeline(tiny_model, tmp_path)
    data["stages"]["synth"]["config"]["languages"] = ["en", "xx"]
    data["stages"]["train"]["job"]["train"]["lr"] = 1
    data["stages"]["eval"]["typo"] = True
    with pytest.raises(ConfigError) as err:
        resolve(PipelineConfig, data)
    msg = str(err.value)
    assert "stages.synth.config.languages" in msg and "unknown language(s) ['xx']" in msg
    assert "stages.eval.typo = True: unknown key" in msg
    data = tiny_pipeline(tiny_model, tmp_path)
    data["stages"]["train"]["job"]["train"]["lr"] = 1
    with pytest.raises(ConfigError, match=r"^stages.train.job: train.lr = 1: unknown key"):
        run_pipeline(resolve(PipelineConfig, data))  # before any stage runs
    assert not (tmp_path / "synth").exists()
    path = tmp_path / "p.yaml"
    path.write_text("name: x\nworkdir: w\nstages: {synth: {output: s, config: {tasks: [nope]}}}\n")
    assert main(["run", str(path)]) == 2


NOISE = (  # what Ray, its workers and the libraries print: the run's log file, not the console
    "RayTrainWorker",
    "TrainController",
    "Reporting training result",
    "Checkpoint successfully created",
    "Warning",  # FutureWarning, RayDeprecationWarning, ...
    "Loading weights",
    "LOAD REPORT",
    "faiss",
    "accelerator",
)


def _run_cli(pipeline: dict, tmp_path: Path, capfd: pytest.CaptureFixture, *args: str) -> list[str]:
    path = tmp_path / "pipeline.yaml"
    path.write_text(json.dumps(pipeline))
    assert main(["run", str(path), *args]) == 0
    captured = capfd.readouterr()
    return (captured.out + captured.err).splitlines()


def test_the_console_shows_stages_progress_and_tables_and_the_log_has_the_rest(
    tiny_model: Path, tmp_path: Path, ray_local, capfd: pytest.CaptureFixture
) -> None:
    workdir = tmp_path / "w"
    shown = _run_cli(tiny_pipeline(tiny_model, workdir), tmp_path, capfd)
    text = "\n".join(shown)
    assert len(shown) <= 30, text
    for stage in ("synth", "train", "eval", "export"):
        assert f"[{stage}] running -> {workdir / stage if stage != 'export' else workdir / 'model'}" in text
        assert f"[{stage}] done in " in text
    assert "[train] step 3/3, " in text and " loss " in text and " pairs/s" in text  # the progress line
    assert "| task (metric) | base | retrofitted |" in text and "per-language tables: " in text  # the results
    assert [n for n in NOISE if n in text] == [], text
    log = workdir / "rtrain.log"
    assert shown[-1] == f"full log: {log}"
    logged = log.read_text()
    assert "(RayTrainWorker pid=" in logged and "Setting up process group" in logged  # Ray's forwarded lines
    assert "[train] running" in logged and "| task (metric) |" in logged  # and what the console showed


def test_verbose_shows_the_worker_lines(
    tiny_model: Path, tmp_path: Path, ray_local, capfd: pytest.CaptureFixture
) -> None:
    data = tiny_pipeline(tiny_model, tmp_path / "w")
    data["stages"] = {"synth": data["stages"]["synth"], "train": data["stages"]["train"]}
    shown = _run_cli(data, tmp_path, capfd, "-v")
    deadline = time.monotonic() + 15  # Ray forwards worker lines to the driver asynchronously
    while not any("(RayTrainWorker pid=" in line for line in shown) and time.monotonic() < deadline:
        time.sleep(0.5)
        captured = capfd.readouterr()
        shown += (captured.out + captured.err).splitlines()
    assert any("(RayTrainWorker pid=" in line for line in shown), shown
    assert not (tmp_path / "w" / "rtrain.log").exists()  # -v: everything on the console, no log file


@pytest.mark.slow
def test_the_quickstart_prints_about_sixty_lines(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """The README's main job, shortened to 4 steps (same stages, model, data, suites): what a person sees."""
    root = Path(__file__).resolve().parents[1]
    workdir = tmp_path / "qs"
    overrides = [f"workdir={workdir}", "stages.train.job.train.max_steps=4", "stages.train.job.logging.wandb=false"]
    assert main(["run", str(root / "jobs" / "quickstart.yaml"), *overrides]) == 0
    captured = capfd.readouterr()
    shown = (captured.out + captured.err).splitlines()
    text = "\n".join(shown)
    assert len(shown) <= 60, text
    assert [n for n in NOISE if n in text] == [], text
    for stage in ("synth", "pairs", "train", "eval", "export"):
        assert f"[{stage}] done in " in text
    assert "| quickstart-dev/DevQA-en (ndcg_at_10) |" in text and shown[-1] == f"full log: {workdir / 'rtrain.log'}"


def test_a_stage_output_never_reaches_the_workdir_another_stage_or_a_folder_it_did_not_write(
    tmp_path: Path, tiny_model: Path
) -> None:
    data = tiny_pipeline(tiny_model, tmp_path / "w")
    data["stages"] = {"synth": data["stages"]["synth"]}
    cfg = resolve(PipelineConfig, data)
    run_pipeline(cfg)
    (tmp_path / "w" / "keep.txt").write_text("the user's file in the workdir")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "thesis.tex").write_text("keep")
    for bad, why in (
        (".", "strictly inside the workdir"),
        (str(outside), "strictly inside the workdir"),
        ("../elsewhere", "strictly inside the workdir"),
        (".stages", "strictly inside the workdir"),
    ):
        with pytest.raises(ConfigError, match=f"stages.synth.output = .*{why}"):
            resolve(PipelineConfig, data, [f"stages.synth.output={bad}"])
    full = tiny_pipeline(tiny_model, tmp_path / "w")
    with pytest.raises(
        ConfigError, match="stages.synth.output = 'data' and stages.train.output = 'data/train' overlap"
    ):
        resolve(PipelineConfig, full, ["stages.synth.output=data", "stages.train.output=data/train"])
    # the synth stage ran into 'synth' before; pointed at a folder of someone else's files it refuses, deletes nothing
    (tmp_path / "w" / "mine").mkdir()
    (tmp_path / "w" / "mine" / "notes.txt").write_text("keep")
    moved = resolve(PipelineConfig, data, ["stages.synth.output=mine"])
    with pytest.raises(StageError, match="holds files that pipeline 'tiny-quickstart' did not write"):
        run_pipeline(moved, force=True)
    assert (tmp_path / "w" / "mine" / "notes.txt").read_text() == "keep" and (tmp_path / "w" / "keep.txt").is_file()
    assert (outside / "thesis.tex").read_text() == "keep"
