"""The train stage's progress on the driver's console, read from the run's `train_log.jsonl`.

Rank 0 appends one JSON line per log step (`step`, `loss`, `pairs_per_s`, ...), per eval (`step`,
`eval_score`) and per resume (`resumed_at_step`); `TrainProgress` follows that file in a thread while
`trainer.fit()` runs. On an interactive terminal it draws one tqdm bar (steps done / planned, ETA, loss,
pairs/s, last eval score); into a file or pipe it prints a plain line at most every `line_every_s` seconds
and at the last step.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

from rtrain import console
from rtrain.checkpoint import LOG_FILE


def clock(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _columns(stream: TextIO) -> int | None:
    """None when the terminal reports its width (tqdm follows it), else a fixed width."""
    try:
        return None if os.get_terminal_size(stream.fileno()).columns > 0 else 100
    except (AttributeError, OSError, ValueError):
        return 100


class TrainProgress:
    """Follows `log_file` in a thread and shows steps done / `total` on `stream` (see the module doc)."""

    def __init__(
        self,
        log_file: Path,
        total: int,
        stream: TextIO,
        interactive: bool,
        poll_s: float = 0.5,
        line_every_s: float = 30.0,
    ) -> None:
        self.log_file, self.total, self.stream = Path(log_file), total, stream
        self.interactive, self.poll_s, self.line_every_s = interactive, poll_s, line_every_s
        self.step = 0
        self.loss: float | None = None
        self.pairs_per_s: float | None = None
        self.eval_score: float | None = None
        self._offset = self.log_file.stat().st_size if self.log_file.exists() else 0  # only this fit's lines
        self._partial = b""
        self._start = time.monotonic()
        # The ETA's origins, as (time, step): the start (or the step-0 eval, or a resume) until a second step
        # record arrives, then the first step record, so that start-up time stops counting.
        self._origin: tuple[float, int] = (self._start, 0)
        self._first_step: tuple[float, int] | None = None
        self._last_line = -float("inf")
        self._printed_step: int | None = None  # the step of the last plain line
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="rtrain-train-progress", daemon=True)
        self._bar: tqdm | None = None

    def eta_s(self) -> float | None:
        """Seconds left at the rate since the first step record (before a second one: since the start)."""
        first = self._first_step
        since, from_step = first if first is not None and self.step > first[1] else self._origin
        if self.step <= from_step:
            return None
        return (time.monotonic() - since) / (self.step - from_step) * (self.total - self.step)

    def describe(self) -> str:
        """ETA, loss, pairs/s and the last eval score, as far as known."""
        eta = self.eta_s() if self.step < self.total else None
        parts = [f"ETA {clock(eta)}" if eta is not None else ("starting" if self.loss is None else "")]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        if self.pairs_per_s is not None:
            parts.append(f"{self.pairs_per_s:.3g} pairs/s")
        if self.eval_score is not None:
            parts.append(f"eval {self.eval_score:.4f}")
        return ", ".join(p for p in parts if p)

    def update(self, record: dict[str, Any]) -> None:
        """Take in one `train_log.jsonl` record."""
        now = time.monotonic()
        if "resumed_at_step" in record:
            self.step = int(record["resumed_at_step"])
            self._origin, self._first_step = (now, self.step), None
            return
        if "eval_score" in record:
            self.eval_score = float(record["eval_score"])
            if self._first_step is None and int(record.get("step", -1)) == self._origin[1]:
                self._origin = (now, self._origin[1])  # the base model's eval: training starts after it
        if "loss" in record and "step" in record:
            self.step = int(record["step"])
            self.loss = float(record["loss"])
            self.pairs_per_s = float(record.get("pairs_per_s", 0.0))
            if self._first_step is None:
                self._first_step = (now, self.step)

    def _read(self) -> None:
        if not self.log_file.exists():
            return
        with open(self.log_file, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    self.update(record)

    def _draw(self, final: bool = False) -> None:
        if self.interactive:
            if self._bar is None:
                return
            self._bar.n = min(self.step, self.total)
            self._bar.set_postfix_str(self.describe(), refresh=False)
            self._bar.refresh()
        elif (
            self.loss is not None
            and self.step != self._printed_step
            and (final or self.step >= self.total or time.monotonic() - self._last_line >= self.line_every_s)
        ):
            self._printed_step = self.step
            self._last_line = time.monotonic()
            elapsed = clock(time.monotonic() - self._start)
            print(f"[train] step {self.step}/{self.total}, {elapsed} elapsed, {self.describe()}", file=self.stream)
            self.stream.flush()

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._read()
            self._draw()

    def __enter__(self) -> TrainProgress:
        if self.interactive:
            width = _columns(self.stream)
            self._bar = tqdm(
                total=self.total,
                desc="[train]",
                unit="step",
                file=self.stream,
                dynamic_ncols=width is None,
                ncols=width,
                bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}{postfix}]",
                postfix="starting",
            )
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
        self._draw(final=True)
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def train_progress(run_dir: Path, total: int) -> Iterator[TrainProgress | None]:
    """Show the progress of the run at `run_dir` while the block runs, in a quiet console session (else nothing)."""
    session = console.active()
    if session is None:
        yield None
        return
    with TrainProgress(Path(run_dir) / LOG_FILE, total, session.err, interactive=session.isatty) as progress:
        yield progress
