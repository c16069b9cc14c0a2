"""Data mixing and batch layout: weighted sources, diversity filters, short negatives, homogeneous batches."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rtrain.checkpoint import LOG_FILE
from rtrain.config import ConfigError, resolve_job
from rtrain.data.layout import MANIFEST, plan_mix
from rtrain.train.trainer import train

from tiny import job_dict, pair_rows, write_jsonl

TASKS = ["retrieval", "qa", "bitext", "paraphrase"]
LANGS = ["en", "de", "fr"]


def varied_rows(n: int, seed: int, source: str, negatives: int = 2) -> list[dict]:
    """Toy pairs spread over TASKS x LANGS (task i % 4, language i % 3), ids unique per source."""
    rows = pair_rows(n, negatives=negatives, seed=seed)
    for i, row in enumerate(rows):
        row.update(id=f"{source}-{i}", task=TASKS[i % 4], query_lang=LANGS[i % 3], source=source)
        row["positive"] = f"{row['positive']} ({source} {i})"  # distinct positives
    return rows


def plan(tmp_path: Path, world: int = 2, batch: int = 4, **data) -> tuple[dict, list]:
    """Plan a mix on the tiny setup; returns the manifest and each rank's rows."""
    job = job_dict(
        Path("unused-model"), tmp_path / "a.jsonl", tmp_path / "runs", train={"batch_size_per_worker": batch}
    )
    job["data"] = {"tokenize_batch_size": 64, **data}
    job["scaling"]["num_workers"] = world
    cfg = resolve_job(job)
    out = tmp_path / "plan"
    result = plan_mix(cfg, world, out)
    manifest = json.loads((out / MANIFEST).read_text())
    return manifest, [pq.read_table(f).to_pylist() for f in result.files], result


@pytest.fixture
def two_sources(tmp_path: Path) -> Path:
    write_jsonl(varied_rows(240, 1, "big"), tmp_path / "a.jsonl")
    write_jsonl(varied_rows(60, 2, "small"), tmp_path / "b.jsonl")
    return tmp_path


def source_of(row: dict) -> str:
    return row["positive"].rsplit("(", 1)[1].split()[0]


def test_weights_set_each_epochs_proportions(two_sources: Path) -> None:
    manifest, ranks, _ = plan(
        two_sources,
        sources=[
            {"name": "a", "files": [str(two_sources / "a.jsonl")], "weight": 1.0},
            {"name": "b", "files": [str(two_sources / "b.jsonl")], "weight": 1.0},
        ],
    )
    # without replacement the largest 1:1 epoch is 2 x 60 rows; 120 rows = 15 global batches of 8
    assert [s["rows_per_epoch"] for s in manifest["sources"]] == [60, 60]
    counts = Counter(source_of(r) for rows in ranks for r in rows)
    assert counts == {"big": 60, "small": 60}
    manifest, ranks, _ = plan(
        two_sources,
        sampling="with_replacement",
        max_rows=400,
        sources=[
            {"name": "a", "files": [str(two_sources / "a.jsonl")], "weight": 3.0},
            {"name": "b", "files": [str(two_sources / "b.jsonl")], "weight": 1.0},
        ],
    )
    counts = Counter(source_of(r) for rows in ranks for r in rows)
    assert counts == {"big": 300, "small": 100}  # 3:1 of 400, the small source upsampled
    assert manifest["first_epoch"]["source"] == {"big": 300, "small": 100}


def test_default_mix_is_every_row_once_and_cap_is_reported(two_sources: Path) -> None:
    files = [str(two_sources / "a.jsonl"), str(two_sources / "b.jsonl")]
    manifest, ranks, result = plan(two_sources, train_files=files)
    ids = [r["positive"] for rows in ranks for r in rows]
    assert len(ids) == len(set(ids)) == 296 and result.rows_per_epoch == 300  # 300 rows -> 37 batches of 8
    assert manifest["epochs"][0]["rows_left_over"] == 4
    manifest, _, _ = plan(two_sources, train_files=files, max_rows=1000)
    assert "set data.sampling=with_replacement" in manifest["notes"][0]
    manifest, _, result = plan(two_sources, train_files=files, fraction=0.5)
    assert result.rows_per_epoch == 150


def test_diversity_filters_keep_the_most_common_and_count_drops(tmp_path: Path) -> None:
    rows = varied_rows(240, 1, "big")
    rows += [dict(r, id=f"x{i}", task="qa", query_lang="de") for i, r in enumerate(varied_rows(40, 3, "x"))]
    write_jsonl(rows, tmp_path / "a.jsonl")
    files = [str(tmp_path / "a.jsonl")]
    manifest, ranks, _ = plan(tmp_path, train_files=files, num_tasks=1, num_languages=1)
    # de has the most rows (80 + 40), and among them qa (20 + 40): 60 rows -> 7 global batches of 8
    assert manifest["first_epoch"]["task"] == {"qa": 56} and manifest["first_epoch"]["query_lang"] == {"de": 56}
    assert manifest["dropped_by_filter"]["num_languages"] == 160 and manifest["dropped_by_filter"]["num_tasks"] == 60
    manifest, _, _ = plan(tmp_path, train_files=files, tasks=["bitext"], languages=["fr"])
    assert manifest["first_epoch"]["task"] == {"bitext": 16} and manifest["first_epoch"]["query_lang"] == {"fr": 16}
    with pytest.raises(ConfigError, match="no rows left after the filters"):
        plan(tmp_path, train_files=files, tasks=["clustering"])


def test_homogeneous_global_batches_across_ranks(two_sources: Path) -> None:
    files = [str(two_sources / "a.jsonl"), str(two_sources / "b.jsonl")]
    _, ranks, result = plan(two_sources, world=2, batch=3, train_files=files, homogeneous_batches="task")
    steps = len(ranks[0]) // 3
    groups_per_step = [{r["group"] for rank in ranks for r in rank[s * 3 : (s + 1) * 3]} for s in range(steps)]
    assert all(len(g) == 1 for g in groups_per_step)
    assert len({next(iter(g)) for g in groups_per_step}) == 4  # all four tasks get steps
    assert result.groups == sorted(TASKS) and len({r["positive"] for rank in ranks for r in rank}) == steps * 6
    _, mixed, _ = plan(two_sources, world=2, batch=3, train_files=files)  # off: batches mix tasks
    assert any(len({r["group"] for rank in mixed for r in rank[s * 3 : (s + 1) * 3]}) > 1 for s in range(steps))


def test_short_negatives_skip_or_pad_from_the_same_global_batch(tmp_path: Path) -> None:
    rows = varied_rows(40, 1, "a", negatives=2) + [
        dict(r, id=f"s{i}") for i, r in enumerate(varied_rows(8, 2, "b", negatives=0))
    ]
    write_jsonl(rows, tmp_path / "a.jsonl")
    job = job_dict(Path("m"), tmp_path / "a.jsonl", tmp_path / "runs", loss={"negatives_per_query": 2})
    with pytest.raises(Exception, match="fewer than loss.negatives_per_query=2"):
        plan_mix(resolve_job(job), 2, tmp_path / "p")
    job["data"]["short_negatives"] = "skip"
    result = plan_mix(resolve_job(job), 2, tmp_path / "p")
    assert json.loads((tmp_path / "p" / MANIFEST).read_text())["dropped_by_filter"]["short_negatives"] == 8
    job["data"]["short_negatives"] = "pad"
    result = plan_mix(resolve_job(job), 2, tmp_path / "p")
    streams = [pq.read_table(f).to_pylist() for f in result.files]
    b = 8  # batch_size_per_worker in job_dict; global batch = 2 ranks x 8
    padded = 0
    for step in range(len(streams[0]) // b):
        batch = [r for s in streams for r in s[step * b : (step + 1) * b]]
        positives = {r["positive"] for r in batch}
        for r in batch:
            assert len(r["negatives"]) >= 2 and r["positive"] not in r["negatives"]
            if "(b " in r["positive"]:
                padded += 1
                assert set(r["negatives"]) <= positives  # padded from this global batch's positives
    assert padded > 0
    assert json.loads((tmp_path / "p" / MANIFEST).read_text())["epochs"][0]["padded_rows"] == padded


def test_config_errors_name_the_keys() -> None:
    base = {"model": {"name_or_path": "m"}}
    with pytest.raises(ConfigError, match="exactly one of data.train_files"):
        resolve_job({**base, "data": {"train_files": ["a"], "sources": [{"name": "s", "files": ["b"]}]}})
    with pytest.raises(ConfigError, match="missing for \\['t'\\]"):
        resolve_job(
            {**base, "data": {"sources": [{"name": "s", "files": ["a"], "weight": 2}, {"name": "t", "files": ["b"]}]}}
        )
    with pytest.raises(ConfigError, match="homogeneous_batches"):
        resolve_job({**base, "data": {"train_files": ["a"], "homogeneous_batches": "yes"}})


def test_two_workers_train_on_one_task_per_step(tiny_model: Path, tmp_path: Path, ray_local) -> None:
    write_jsonl(varied_rows(192, 1, "big"), tmp_path / "a.jsonl")
    cfg = resolve_job(
        job_dict(
            tiny_model,
            tmp_path / "a.jsonl",
            tmp_path / "runs",
            data={"homogeneous_batches": "task"},
            train={"backend": "ddp", "max_steps": 8, "log_every_steps": 1, "batch_size_per_worker": 4},
            output={"export": False},
        )
    )
    outcome = train(cfg)
    log = [json.loads(line) for line in (outcome.run_dir / LOG_FILE).read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 9))
    assert log[-1]["mixed_batches"] == 0  # checked across both workers with an all_reduce every step
    groups = {r["batch_group"] for r in log}
    assert len(groups) > 1 and min(groups) >= 0, groups  # several tasks, each step one of them
    assert (outcome.run_dir / "data" / MANIFEST).is_file()


def test_mixed_batch_counter_flags_a_step_with_two_groups() -> None:
    import torch

    from rtrain.train.loop import MixedBatchCounter

    counter = MixedBatchCounter(enabled=True)
    for groups in ([2, 2], [2]):  # one step of two micro-batches, both group 2
        counter.add(torch.tensor(groups))
    counter.end_step()
    assert counter.metrics() == {"mixed_batches": 0, "batch_group": 2}
    counter.add(torch.tensor([1, 1]))
    counter.add(torch.tensor([3]))
    counter.end_step()
    assert counter.metrics() == {"mixed_batches": 1, "batch_group": -1}


def test_pipeline_train_stage_resolves_source_files_in_the_workdir(tmp_path: Path) -> None:
    from rtrain.config.load import resolve
    from rtrain.pipeline import PipelineConfig
    from rtrain.pipeline.runner import train_job

    job = {
        "model": {"name_or_path": "m"},
        "data": {
            "sources": [
                {"name": "synth", "files": ["synth/train.parquet"], "weight": 1},
                {"name": "mined", "files": ["mined"], "weight": 2},
            ]
        },
    }
    cfg = resolve(PipelineConfig, {"name": "p", "workdir": str(tmp_path), "stages": {"train": {"job": job}}}, [])
    assert cfg.stages.train.inputs == ["synth/train.parquet", "mined"]  # the sources' files are the stage inputs
    resolved = train_job(cfg, cfg.stages.train)
    assert [s.files for s in resolved.data.sources] == [
        [str(tmp_path / "synth/train.parquet")],
        [str(tmp_path / "mined")],
    ]
    with pytest.raises(ConfigError, match="drop `inputs`"):
        resolve(
            PipelineConfig,
            {"name": "p", "workdir": str(tmp_path), "stages": {"train": {"job": job, "inputs": ["x"]}}},
            [],
        )
