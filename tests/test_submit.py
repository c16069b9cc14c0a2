"""End to end on a real two-node Ray cluster on this machine (cluster/local.sh): submit, follow, fetch, fail.

The cluster gets free ports and a temp dir of its own, offers 2 logical CPUs per node (a 2-core
machine: Ray Data needs CPU besides the two 0.5-CPU train workers), and `down` must stop exactly
the processes `up` started: two sentinel processes that look like another Ray instance and like a
user's process in the cluster's temp dir must survive it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tiny import FAKE_WANDB_KEY, job_dict, make_tiny_model, pair_rows, write_jsonl

# About 2.5-4 minutes on the 2-core machine (cluster start, one 2-step job, one failing job, teardown),
# depending on what else runs there: over the default suite's budget, so `-m slow` (make test-slow).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LOCAL_SH = ROOT / "cluster" / "local.sh"
EXTRA_SECRET = "rtrain-e2e-extra-secret-5a1b"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def rtrain(cluster: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """`rtrain ARGS --address <the cluster>` in this process (one import of rtrain, not one per command)."""
    from rtrain.cli import main

    monkeypatch.chdir(ROOT)  # the project shipped as the job's working_dir
    monkeypatch.setenv("RTRAIN_E2E_EXTRA", EXTRA_SECRET)

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main([*args, "--address", cluster])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def _pids_matching(text: str) -> set[int]:
    out = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if text in cmd and state != "Z":
                out.add(int(name))
    return out


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local two-node cluster started by cluster/local.sh: yields its dashboard address; tears it down."""
    local_dir = tempfile.mkdtemp(prefix="rtrl-", dir="/tmp")  # short: Ray's socket paths live under it
    env = {
        **os.environ,
        "RTRAIN_LOCAL_DIR": local_dir,
        "RTRAIN_LOCAL_PORT": str(_free_port()),
        "RTRAIN_LOCAL_DASHBOARD_PORT": str(_free_port()),
        "RTRAIN_LOCAL_CLIENT_PORT": str(_free_port()),
        "RTRAIN_LOCAL_HEAD_CPUS": "2",
        "RTRAIN_LOCAL_WORKER_CPUS": "2",
    }
    # Sentinels `down` must not touch: another Ray's process, and a non-Ray process naming our temp dir.
    other_ray = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(900)", "/ray/", "/tmp/ray/session_other"]
    )
    user_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)", f"{local_dir}/notes.txt"])
    up = subprocess.run(["bash", str(LOCAL_SH), "up"], env=env, capture_output=True, text=True, timeout=240)
    try:
        if up.returncode != 0:
            raise RuntimeError(f"cluster/local.sh up failed:\n{up.stdout}\n{up.stderr}")
        match = re.search(r"dashboard: (http://\S+)", up.stdout)
        if match is None:
            raise RuntimeError(f"cluster/local.sh up printed no dashboard address:\n{up.stdout}")
        yield match.group(1)
    finally:
        started = _pids_matching(local_dir + "/session_")
        down = subprocess.run(["bash", str(LOCAL_SH), "down"], env=env, capture_output=True, text=True, timeout=120)
        left = _pids_matching(local_dir + "/session_")
        alive = [p.poll() is None for p in (other_ray, user_proc)]
        for proc in (other_ray, user_proc):
            proc.kill()
            proc.wait()
        assert down.returncode == 0, down.stderr
        assert started and not left, f"down left these processes of the cluster running: {left}"
        assert alive == [True, True], "down stopped a process it did not start"
        assert not Path(local_dir).exists()


def _job_file(tmp: Path, name: str, train_files: list[str]) -> Path:
    """A tiny DeepSpeed ZeRO-2 LoRA job: 1 worker (one data stream: about half the time of 2 on 2 cores), 2 steps."""
    model = make_tiny_model(tmp / "model")
    job = job_dict(
        model,
        tmp / "unused.jsonl",
        tmp / "storage",
        train={"max_steps": 2, "checkpoint_every_steps": 2, "log_every_steps": 1},
        scaling={"num_workers": 1},
    )
    job["name"] = name
    job["data"]["train_files"] = train_files
    job["output"].pop("name", None)  # rtrain submit names the run <name>-<timestamp> and reports it
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def _files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_submit_follow_succeeds_and_outputs_land_in_storage(rtrain: Callable[..., Run], tmp_path: Path) -> None:
    pairs = write_jsonl(pair_rows(64, negatives=2), tmp_path / "pairs" / "train.jsonl")
    job = _job_file(tmp_path, "e2e", [str(pairs)])

    sub = rtrain(
        "submit",
        str(job),
        "--env",
        "RTRAIN_E2E_EXTRA",
        "--env",
        "WANDB_API_KEY",
        "--follow",
        "train.learning_rate=2e-3",
    )
    assert sub.returncode == 0, sub.stdout[-3000:] + sub.stderr[-3000:]
    job_id = re.search(r"submitted (\S+) to", sub.stdout).group(1)
    outputs = Path(re.search(r"outputs: +(\S+)", sub.stdout).group(1))
    assert f"{job_id}: SUCCEEDED" in sub.stdout
    assert "env passed through (values not shown): RTRAIN_E2E_EXTRA, WANDB_API_KEY" in sub.stdout  # both --env
    assert "train.yaml" in sub.stdout and "step=2" in sub.stdout  # the job's own log lines were followed

    # The run dir: resolved job, log, checkpoint (adapter + trainer state), exported sentence-transformers model.
    assert outputs.parent == tmp_path / "storage" and outputs.name.startswith("e2e-")
    assert yaml.safe_load((outputs / "job.yaml").read_text())["train"]["learning_rate"] == pytest.approx(2e-3)
    checkpoints = sorted(p for p in outputs.glob("checkpoint_*") if p.is_dir())
    assert checkpoints and (checkpoints[-1] / "trainer_state.json").is_file()
    assert (checkpoints[-1] / "adapter" / "adapter_config.json").is_file()
    assert (outputs / "model" / "modules.json").is_file() and (outputs / "model" / "config.json").is_file()

    status = rtrain("jobs", "status", job_id)
    assert status.returncode == 0 and re.search(r"status\s+SUCCEEDED", status.stdout)
    assert re.search(rf"outputs\s+{re.escape(str(outputs))}", status.stdout)
    assert "env_vars: RTRAIN_E2E_EXTRA, WANDB_API_KEY (values hidden)" in status.stdout
    listing = rtrain("jobs", "list")
    assert job_id in listing.stdout and str(outputs) in listing.stdout
    fetched = rtrain("jobs", "fetch", job_id, "--out", str(tmp_path / "fetched"), "--part", "model")
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "fetched" / "modules.json").is_file()

    for text in (sub.stdout, sub.stderr, status.stdout, listing.stdout):
        assert FAKE_WANDB_KEY not in text and EXTRA_SECRET not in text
    assert not _files_containing(outputs, FAKE_WANDB_KEY) and not _files_containing(outputs, EXTRA_SECRET)


def test_failing_job_reports_why_and_bad_config_is_never_sent(rtrain: Callable[..., Run], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "pairs.jsonl"
    job = _job_file(tmp_path, "bad-data", [str(missing)])
    before = rtrain("jobs", "list").stdout.count("raysubmit_")

    refused = rtrain("submit", str(job), "train.lr=3", "scaling.num_workers=0")
    assert refused.returncode == 2
    assert "train.lr = 3: unknown key" in refused.stderr and "scaling.num_workers = 0" in refused.stderr
    assert rtrain("jobs", "list").stdout.count("raysubmit_") == before  # nothing reached the cluster

    sub = rtrain("submit", str(job))
    assert sub.returncode == 0, sub.stderr
    job_id = re.search(r"submitted (\S+) to", sub.stdout).group(1)
    logs = rtrain("jobs", "logs", job_id, "--follow")
    assert logs.returncode == 1
    assert f"{job_id}: FAILED" in logs.stdout
    # The trainer's PairDataError, raised by the job's driver on the cluster, printed by `rtrain train`:
    assert re.search(rf"error: .*{re.escape(str(missing))}.*no such file", logs.stdout, re.IGNORECASE)
    status = rtrain("jobs", "status", job_id)
    assert re.search(r"status\s+FAILED", status.stdout)
    assert str(missing) in status.stdout  # Ray's message carries the end of the logs, with the reason
    assert re.search(r"exit code\s+2", status.stdout)
