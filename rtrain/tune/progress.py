"""What `rtrain tune` prints while a study runs: one line per trial start, end and failure.

Tune's own status tables and the trials' Ray worker output go to the study's log file (`rtrain.log` in the study
folder) in a quiet session; these lines, on the `rtrain.tune` logger, are what the person at the terminal sees.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ray import tune

from rtrain.train.progress import clock
from rtrain.tune.cleanup import ENDED_STATUSES
from rtrain.tune.trial import read_record

log = logging.getLogger("rtrain.tune")


def trial_label(config: dict[str, Any]) -> str:
    """A trial's sampled values as `key=value` pairs (a bundle's value is already its label)."""
    return ", ".join(f"{key}={value}" for key, value in config.items()) or "the base job"


class TrialLines(tune.Callback):
    """Tune driver callback: log each trial's start, its end with the metric and the best so far, its failure."""

    def __init__(self, metric: str, mode: str, total: int, records_dir: Path) -> None:
        self.metric, self.mode, self.total, self.records_dir = metric, mode, total, records_dir
        self.started: dict[str, float] = {}
        self.best: tuple[float, str] | None = None  # (score, trial id) among the trials ended in this session

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.started[trial.trial_id] = time.time()
        log.info(f"trial {trial.trial_id} started: {trial_label(trial.config)}")

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        log.warning(f"trial {trial.trial_id} failed after {self._took(trial)}, retrying: {self._error(trial)}")

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        step = f" at step {result['step']}" if "step" in result else ""
        score = result.get(self.metric)
        if score is None:
            took, count = self._took(trial), self._count(trials, trial)
            log.info(f"trial {trial.trial_id} ended after {took}{step}, without {self.metric}; {count}")
        else:
            score = float(score)
            if self.best is None or (score > self.best[0] if self.mode == "max" else score < self.best[0]):
                self.best = (score, trial.trial_id)
            log.info(
                f"trial {trial.trial_id} ended after {self._took(trial)}{step}: {self.metric} {score:.4f}, "
                f"best so far {self.best[0]:.4f} (trial {self.best[1]}); {self._count(trials, trial)}"
            )

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        took, count = self._took(trial), self._count(trials, trial)
        log.warning(f"trial {trial.trial_id} failed after {took}: {self._error(trial)}; {count}")

    def _took(self, trial: Any) -> str:
        return clock(time.time() - self.started.get(trial.trial_id, time.time()))

    def _error(self, trial: Any) -> str:
        """The first line of the error the trial recorded (its whole text is in the trial's record and the log)."""
        error = read_record(self.records_dir / f"{trial.trial_id}.json").get("error") or "its error is in the log"
        return error.strip().splitlines()[0]

    def _count(self, trials: list[Any], trial: Any) -> str:
        ended = 1 + sum(t.status in ENDED_STATUSES for t in trials if t is not trial)
        return f"{ended} of {self.total} trials ended"
