"""A quiet console keeps rtrain's own lines on the terminal and sends everything else to the run's log."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from rtrain import console
from rtrain.train.progress import TrainProgress


def test_quiet_console_shows_rtrain_lines_and_logs_the_rest(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    log_file = tmp_path / "run" / console.LOG_NAME
    with console.QuietConsole("rtrain test") as session:
        assert console.active() is session
        logging.getLogger("rtrain.pipeline").info("[stage] running")
        logging.getLogger("rtrain.eval.retrieval").info("rtrain detail")
        logging.getLogger("rtrain.eval.retrieval").warning("rtrain warning")
        logging.getLogger("transformers.modeling").warning("library warning")
        logging.getLogger("somelib.core").error("library error")  # ray.* loggers do not propagate once Ray ran
        print("python print")
        sys.stderr.write("python stderr\n")
        os.write(1, b"c-level stdout\n")
        os.write(2, b"c-level stderr\n")
        subprocess.run([sys.executable, "-c", "print('child process')"], check=True)
        warnings.warn("a deprecated thing", FutureWarning, stacklevel=1)
        console.show("| table |")
        assert console.attach_log(log_file) == log_file  # the lines so far move into the log
        assert console.attach_log(tmp_path / "other.log") == log_file  # the first log stays
        print("after attach")
        logging.getLogger("rtrain").info("[stage] done")
    assert console.active() is None
    captured = capfd.readouterr()
    shown = (captured.out + captured.err).splitlines()
    assert sorted(shown) == sorted(
        [
            "[stage] running",
            "rtrain warning",
            "library error",
            "| table |",
            "[stage] done",
        ]
    ), shown
    log = log_file.read_text()
    assert log.startswith("===== ") and "rtrain test =====" in log.splitlines()[0]
    for line in (
        "INFO rtrain.pipeline: [stage] running",
        "rtrain detail",
        "library warning",
        "ERROR somelib.core: library error",
        "python print",
        "python stderr",
        "c-level stdout",
        "c-level stderr",
        "child process",
        "FutureWarning: a deprecated thing",
        "| table |",
        "after attach",
        "[stage] done",
    ):
        assert line in log, line
    assert not (tmp_path / "other.log").exists()
    print("restored")  # the streams and descriptors are back
    os.write(1, b"fd restored\n")
    assert capfd.readouterr().out == "restored\nfd restored\n"


def test_a_failure_before_any_log_shows_what_was_printed(capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(RuntimeError, match="boom"), console.QuietConsole():
        print("what led to it")
        raise RuntimeError("boom")
    assert "what led to it" in capfd.readouterr().err


def _append(path: Path, *records: dict) -> None:
    with open(path, "a") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)


def _wait_for(stream: io.StringIO, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert text in stream.getvalue(), stream.getvalue()


def test_train_progress_follows_the_run_log(tmp_path: Path) -> None:
    log_file = tmp_path / "train_log.jsonl"
    _append(log_file, {"step": 9, "loss": 9.0})  # an earlier fit's line (a resumed run): not this fit's progress
    out = io.StringIO()
    with TrainProgress(log_file, total=4, stream=out, interactive=False, poll_s=0.01, line_every_s=0) as progress:
        _append(log_file, {"step": 0, "eval_score": 0.5})
        _append(log_file, {"step": 2, "loss": 1.5, "pairs_per_s": 12.0})
        _wait_for(out, "[train] step 2/4")
        with open(log_file, "a") as fh:
            fh.write('{"step": 4, "loss": 1.25, "pairs_per_s": 13.0, "eval_score": 0.6')  # half-written
        time.sleep(0.05)
        assert progress.step == 2 and progress.eval_score == 0.5
        with open(log_file, "a") as fh:
            fh.write("}\n")  # the rest of the line
        _wait_for(out, "[train] step 4/4")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines  # one line per step record, no repeat at the end
    assert "loss 1.5, 12 pairs/s, eval 0.5000" in lines[0] and "ETA " in lines[0]
    assert lines[1].endswith(" elapsed, loss 1.25, 13 pairs/s, eval 0.6000"), lines[1]  # done: no ETA


def test_train_progress_eta_counts_from_the_first_step_record() -> None:
    progress = TrainProgress(Path("/nonexistent/train_log.jsonl"), total=100, stream=io.StringIO(), interactive=False)
    assert progress.eta_s() is None and progress.describe() == "starting"
    progress.update({"step": 10, "loss": 2.0, "pairs_per_s": 5.0})
    first = progress.eta_s()
    assert first is not None and first >= 0
    progress._first_step = (time.monotonic() - 10.0, 10)  # 10 s for the first 10 steps since then
    progress.update({"step": 20, "loss": 1.0, "pairs_per_s": 5.0})
    eta = progress.eta_s()
    assert eta is not None and 70 < eta < 90  # 80 steps left at 1 step/s
    progress.update({"resumed_at_step": 12})
    assert progress.step == 12 and progress.eta_s() is None
