"""Free the Ray Train workers of trials that Tune stopped (ASHA, time budget), whatever Ray serves.

When Tune stops a trial it kills the trial's process, and with it the Train controller and its
workers; the workers' placement group, though, lives as long as the Tune driver's job, so the CPUs
it holds are never given back and later trials wait forever for workers. Ray Train's own cleaner
needs the State API (the dashboard) and a single Ray instance on the machine to find its cluster.

Here the controller records each worker group's placement group in `<study>/trials/<trial_id>.pgs`
(`RecordPlacementGroups`, a Train callback), and the Tune driver removes the recorded groups of
every trial that has ended (`ReleaseEndedTrials`, a Tune callback). A group Train already removed
is skipped.

`MarkEndedTrials` also leaves `<trial_id>.ended` for every trial Tune ended on purpose (it finished,
or the scheduler stopped it), so a trial that has neither this mark nor an error was cut off by an
interrupt (Ctrl-C, time budget) and is what `--resume` continues.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray import tune
from ray.train.v2._internal.execution.callback import WorkerGroupCallback
from ray.util import placement_group_table, remove_placement_group
from ray.util.placement_group import PlacementGroup

log = logging.getLogger("rtrain.tune")

SUFFIX = ".pgs"
ENDED = ".ended"
ENDED_STATUSES = ("TERMINATED", "ERROR")  # Tune's statuses of a trial that will not run again


def groups_file(records_dir: Path, trial_id: str) -> Path:
    return records_dir / f"{trial_id}{SUFFIX}"


class RecordPlacementGroups(WorkerGroupCallback):
    """Train controller callback: append each started worker group's placement group id to a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def after_worker_group_start(self, worker_group: Any) -> None:
        group = worker_group.get_worker_group_state().placement_group_handle.placement_group
        with open(self.path, "a") as fh:
            fh.write(group.id.hex() + "\n")


def release(path: Path) -> int:
    """Remove every placement group listed in `path` that still exists; returns how many were removed."""
    import ray

    if not path.is_file():
        return 0
    removed = 0
    for hex_id in dict.fromkeys(path.read_text().split()):
        group = PlacementGroup(ray.PlacementGroupID(bytes.fromhex(hex_id)))
        state = placement_group_table(group).get("state")
        if state and state != "REMOVED":
            remove_placement_group(group)
            removed += 1
    path.unlink(missing_ok=True)
    return removed


class ReleaseEndedTrials(tune.Callback):
    """Tune driver callback: after each step, free the placement groups of trials that have ended."""

    def __init__(self, records_dir: Path) -> None:
        self.records_dir = records_dir

    def _sweep(self, trials: list[Any]) -> None:
        for trial in trials:
            if trial.status in ENDED_STATUSES:
                path = groups_file(self.records_dir, trial.trial_id)
                if path.is_file():
                    count = release(path)
                    if count:
                        log.info(f"trial {trial.trial_id} ended: freed {count} leftover worker placement group(s)")

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._sweep(trials)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._sweep(trials)


def ended_file(records_dir: Path, trial_id: str) -> Path:
    return records_dir / f"{trial_id}{ENDED}"


class MarkEndedTrials(tune.Callback):
    """Tune driver callback: mark trials that completed or that the scheduler stopped (not interrupted ones)."""

    def __init__(self, records_dir: Path) -> None:
        self.records_dir = records_dir

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        path = ended_file(self.records_dir, trial.trial_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("ended\n")
