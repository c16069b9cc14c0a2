"""Real faults (#15): processes killed with SIGKILL from outside, mid-run, and the exactly-once audit.

Every run here writes the consumption ledger (`output.ledger: true`); the ledger also names each
worker's pid, which is how a test finds the process to kill. After recovery, `rtrain audit` must
find every planned row of every epoch trained on exactly once in the final checkpoint's lineage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from rtrain.checkpoint import LOG_FILE, latest_checkpoint, load_trainer_state
from rtrain.cli import main
from rtrain.config.load import resolve_job
from rtrain.ledger import audit, ledger_path, read_lineage, worker_pids
from rtrain.train.trainer import registered_checkpoint, train

from tiny import job_dict, own_lines

ROOT = Path(__file__).resolve().parents[1]


def _ledger_step(run_dir: Path) -> int:
    """The highest optimizer step any rank has logged so far (0 before the first)."""
    best = 0
    for path in (run_dir / "ledger").glob("rank-*.jsonl"):
        for line in path.read_text().splitlines():
            if line.startswith('{"batch"'):
                best = max(best, json.loads(line)["step"])
    return best


def _wait_for(predicate, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _registered(run_dir: Path) -> bool:
    """Whether Ray Train has registered a checkpoint of the run (what a restart resumes from)."""
    if not (run_dir / "checkpoint_manager_snapshot.json").is_file():
        return False
    try:
        return registered_checkpoint(run_dir) is not None
    except (ValueError, OSError):  # the snapshot is being rewritten
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def _kill_mid_run(argv: list[str], cwd: Path, ready) -> None:
    """Start `rtrain ARGV` in its own process group, wait until `ready()`, then SIGKILL the group (the driver and
    the Ray it started) and wait until the workers named in the ledgers under `cwd` are gone too."""
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(
        [sys.executable, "-m", "rtrain.cli", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(ready, f"rtrain {argv[0]} to reach the kill point", 240)
        pids = [pid for run_dir in _ledger_dirs(cwd) for pid in worker_pids(run_dir).values()]
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        _wait_for(lambda: not any(_alive(pid) for pid in pids), "the orphaned workers to exit", 60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)


def _ledger_dirs(root: Path) -> list[Path]:
    return [p.parent for p in root.rglob("ledger") if p.is_dir()]


def _job(tiny_model: Path, tiny_pairs: Path, storage: Path, **train: object) -> dict:
    return job_dict(
        tiny_model,
        tiny_pairs,
        storage,
        train={"max_steps": 24, "checkpoint_every_steps": 4, "log_every_steps": 4, **train},
        scaling={"num_workers": 2, "cpus_per_worker": 0.5, "max_failures": 1},
        output={"storage_path": str(storage), "name": "run", "export": False, "ledger": True},
    )


@pytest.fixture(scope="module")
def killed_run(tiny_model: Path, tiny_pairs: Path, tmp_path_factory: pytest.TempPathFactory, ray_local):
    """A 2-worker DDP run (GradCache, 2 accumulation steps, length-aware and unpadded encoding) whose rank-1 worker
    process gets SIGKILL after step 6, once Ray Train has registered a checkpoint: (run dir, the killed pid, the
    run's outcome)."""
    storage = tmp_path_factory.mktemp("killed")
    job = _job(tiny_model, tiny_pairs, storage, backend="ddp", gradient_accumulation_steps=2, length_aware_tokens=64)
    job["model"]["unpadded"] = True
    cfg = resolve_job(job | {"loss": {"negatives_per_query": 1, "cached": True, "mini_batch_size": 3}})
    run_dir = storage / "run"
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(result=train(cfg)), daemon=True)
    thread.start()
    _wait_for(lambda: _ledger_step(run_dir) >= 6 and _registered(run_dir), "step 6 and a registered checkpoint")
    victim = worker_pids(run_dir)[1]
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive() and "result" in outcome, "the run did not recover"
    return run_dir, victim, outcome["result"]


def test_a_killed_worker_restarts_from_its_checkpoint_and_the_audit_is_clean(killed_run) -> None:
    """Ray Train restarts the worker group from the registered checkpoint, the run ends at the planned step, and
    the ledger shows every planned row trained exactly once."""
    run_dir, victim, outcome = killed_run
    assert load_trainer_state(outcome.checkpoint)["step"] == 24
    lineage = read_lineage(ledger_path(run_dir, 1))
    assert lineage.attempts == 2 and lineage.pids[0] == victim and lineage.pids[1] != victim
    starts = [line for line in ledger_path(run_dir, 1).read_text().splitlines() if '"start"' in line]
    resumed = [json.loads(line) for line in (run_dir / LOG_FILE).read_text().splitlines() if "resumed" in line]
    assert len(resumed) == 1 and resumed[0]["resumed_at_step"] % 4 == 0, (starts, resumed)  # from a checkpoint
    report = audit(run_dir)
    assert report.ok, report.text()
    epochs = re.search(r"epochs: (\d+) of (\d+) trained every planned id exactly once", report.text())
    assert epochs and epochs[1] == epochs[2] and int(epochs[1]) >= 1, report.text()


def test_the_audit_catches_a_lost_batch_and_a_double_trained_one(
    killed_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The audit can fail: the run's ledger edited to drop one micro-batch and repeat another is caught."""
    run_dir = tmp_path / "run"
    shutil.copytree(killed_run[0], run_dir)
    assert main(["audit", str(run_dir)]) == 0
    assert "audit: clean" in capsys.readouterr().out
    assert main(["audit", str(tmp_path)]) == 2  # not a run dir: one line saying what to give
    assert own_lines(capsys.readouterr().err) == (
        f"rtrain audit: error: {tmp_path}: no data/manifest.json; give an rtrain run dir (the folder with job.yaml)\n"
    )
    path = ledger_path(run_dir, 0)
    lines = path.read_text().splitlines()
    batches = [i for i, line in enumerate(lines) if line.startswith('{"batch"')]
    second = json.loads(lines[batches[1]])
    lines[batches[1]] = json.dumps({**second, "batch": 0})  # batch 1 lost, batch 0 trained twice
    path.write_text("\n".join(lines) + "\n")
    assert main(["audit", str(run_dir)]) == 2  # one attempt training a batch twice: a damaged ledger
    assert "micro-batch 0 trained twice in one attempt" in capsys.readouterr().err
    lines[batches[1]] = json.dumps({**second, "rows": [r + 1 for r in second["rows"]]})  # shifted rows
    path.write_text("\n".join(lines) + "\n")
    assert main(["audit", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM: rank 0: 1 micro-batch(es) got rows other than planned, first [1]" in out
    assert re.search(r"epoch 0: \d+ planned rows, \d+ trained as planned, 1 id\(s\) never trained, 1 extra", out), out


def test_a_killed_driver_then_resume_ends_at_the_planned_step(
    tiny_model: Path, tiny_pairs: Path, tmp_path: Path, ray_local
) -> None:
    """SIGKILL of `rtrain train` and every process it started (its Ray included) mid-run; `rtrain train --resume`
    continues from the last checkpoint, and the audit is clean."""
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(_job(tiny_model, tiny_pairs, tmp_path / "runs", max_steps=24)))
    run_dir = tmp_path / "runs" / "run"
    _kill_mid_run(["train", str(job)], tmp_path, lambda: _ledger_step(run_dir) >= 10 and _registered(run_dir))
    stopped_at = load_trainer_state(latest_checkpoint(run_dir))["step"]
    assert 0 < stopped_at < 24
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert load_trainer_state(latest_checkpoint(run_dir))["step"] == 24
    report = audit(run_dir)
    assert report.ok, report.text()
    assert "2 attempt(s)" in report.text()


@pytest.mark.slow
def test_soak_with_a_worker_killed_every_30_s_ends_clean(tmp_path: Path, ray_local) -> None:
    """Two minutes of tests/soak.py (the README's 30-minute soak, shortened): several kills, a clean audit."""
    sys.path.insert(0, str(ROOT / "tests"))
    from soak import soak

    summary = soak(tmp_path, minutes=2.0, kill_every=30.0, checkpoint_every=50, hidden=64)
    assert summary["final_step"] == summary["planned_steps"]
    assert len(summary["kills"]) >= 2 and summary["audit_ok"], summary
    assert sum(summary["attempts"]) >= 2 + len(summary["kills"])


@pytest.mark.slow
def test_a_killed_tune_trial_worker_recovers_and_the_study_finishes(
    tiny_model: Path, tiny_pairs: Path, tmp_path: Path, ray_local
) -> None:
    """SIGKILL of a Tune trial's Ray Train worker: the trial's run restarts from its checkpoint and completes."""
    from rtrain.tune.runner import run_study
    from rtrain.tune.study import load_study

    job = _job(tiny_model, tiny_pairs, tmp_path / "unused", max_steps=24)
    job["scaling"] = {"num_workers": 1, "cpus_per_worker": 0.5, "max_failures": 1}
    study = load_study(
        {
            "name": "killed",
            "base_job": job,
            "storage_path": str(tmp_path / "tune"),
            "metric": "loss",
            "mode": "min",
            "search_space": {"train.learning_rate": {"grid": [1e-3]}},
        },
        cwd=tmp_path,
    )
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(result=run_study(study)), daemon=True)
    thread.start()
    _wait_for(lambda: any(_ledger_step(d) >= 6 and _registered(d) for d in _ledger_dirs(tmp_path / "tune")), "step 6")
    (run_dir,) = _ledger_dirs(tmp_path / "tune")
    os.kill(worker_pids(run_dir)[0], signal.SIGKILL)
    thread.join(timeout=300)
    row = outcome["result"].table.to_dict("records")[0]
    assert row["status"] == "completed" and row["step"] == 24, row
    assert read_lineage(ledger_path(run_dir, 0)).attempts == 2
    report = audit(run_dir)
    assert report.ok, report.text()


@pytest.mark.slow
def test_a_pipeline_killed_in_its_train_stage_reruns_to_the_end(
    tiny_model: Path, tmp_path: Path, ray_local, capfd: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL of `rtrain run` (and its Ray) while the train stage writes; the rerun skips the finished synth
    stage, redoes train, and ends with an exported model and a clean audit."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_pipeline import tiny_pipeline

    workdir = tmp_path / "w"
    pipeline = tiny_pipeline(tiny_model, workdir, max_steps=60, checkpoint_every_steps=10)
    del pipeline["stages"]["eval"]
    pipeline["stages"]["train"]["job"]["output"] = {"ledger": True}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    _kill_mid_run(["run", str(path)], tmp_path, lambda: any(_ledger_step(d) >= 12 for d in _ledger_dirs(workdir)))
    assert not (workdir / "model").exists()
    capfd.readouterr()
    assert main(["run", str(path)]) == 0
    shown = capfd.readouterr()
    assert "[synth] up to date, skipped" in shown.out + shown.err and "[train] running" in shown.out + shown.err
    (run_dir,) = _ledger_dirs(workdir)
    assert load_trainer_state(latest_checkpoint(run_dir))["step"] == 60
    assert (workdir / "model" / "modules.json").is_file()
    report = audit(run_dir)
    assert report.ok, report.text()


def test_a_resumed_stream_starts_at_the_checkpoint_row_without_reading_the_rows_before(
    tiny_model: Path, tiny_pairs: Path, tmp_path: Path, ray_local
) -> None:
    """#14 resume without replay: `--resume` filters each rank's stream to the rows after its checkpoint, before
    tokenization; after an automatic restart (full streams) the worker skips to the same row; a stream starting
    past the checkpoint is an error, never a silent gap."""
    import torch

    from rtrain.data.dataset import build_rank_datasets, dataset_name
    from rtrain.data.layout import plan_mix
    from rtrain.train.loop import seek_rows

    cfg = resolve_job(job_dict(tiny_model, tiny_pairs, tmp_path, train={"max_steps": 6}))
    mix = plan_mix(cfg, 2, tmp_path / "data")
    b = cfg.train.batch_size_per_worker

    def rows(start_row: int) -> list[list[int]]:
        stream = build_rank_datasets(mix.files, cfg, start_row)[dataset_name(1)]
        return [list(batch["row"]) for batch in stream.iter_batches(batch_size=b, batch_format="numpy")]

    resumed, full = rows(3 * b), rows(0)
    assert resumed == full[3:] == [list(range(j * b, (j + 1) * b)) for j in range(3, 6)]
    as_tensors = [{"row": torch.tensor(r)} for r in full]
    assert [list(x["row"].tolist()) for x in seek_rows(iter(as_tensors), 3 * b, 1)] == full[3:]
    with pytest.raises(RuntimeError, match=f"resumes at row {4 * b}, but the checkpoint trained {3 * b}"):
        next(seek_rows(iter(as_tensors[4:]), 3 * b, 1))
