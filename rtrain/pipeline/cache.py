"""Stage bookkeeping: skip a stage whose inputs and config are unchanged; never trust half-written output.

Markers live in `<workdir>/.stages/`, not inside the outputs:
- `<stage>.running`: written when a stage starts; a rerun that finds it knows the output is partial.
- `<stage>.done.json`: written last, with the stage's fingerprint (config + inputs' fingerprints).
Both record the output folder the stage wrote: a stage deletes an output before it reruns only when a
marker says this pipeline's stage wrote that very folder (the schema keeps outputs inside the workdir and
apart from each other).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from rtrain.errors import UserError

MARKERS = ".stages"


class StageError(UserError, RuntimeError):
    """A stage cannot run as configured (e.g. its output folder holds files it did not write)."""


def _done_file(workdir: Path, stage: str) -> Path:
    return workdir / MARKERS / f"{stage}.done.json"


def _running_file(workdir: Path, stage: str) -> Path:
    return workdir / MARKERS / f"{stage}.running"


def _path_fingerprint(path: Path, workdir: Path, producers: dict[str, str]) -> str:
    """A stage-produced input is known by its producer's fingerprint; any other by size and mtime."""
    try:
        rel = path.resolve().relative_to(workdir.resolve())
        top = rel.parts[0] if rel.parts else ""
    except ValueError:
        top = ""
    if top in producers:
        return f"{rel}@{producers[top]}"
    if not path.exists():
        raise StageError(f"input {path} does not exist: run the stage that writes it, or fix the stage's inputs")
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    return "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def fingerprint(config: dict[str, Any], inputs: list[Path], workdir: Path, producers: dict[str, str]) -> str:
    """sha256 of the stage config and its inputs' fingerprints."""
    parts = [json.dumps(config, sort_keys=True, default=str)]
    parts += [_path_fingerprint(p, workdir, producers) for p in inputs]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def is_done(workdir: Path, stage: str, pipeline: str, print_: str, output: Path) -> bool:
    """True when this pipeline's stage finished before with this fingerprint and its output is still there."""
    done = _done_file(workdir, stage)
    if not done.is_file() or _running_file(workdir, stage).exists() or not output.exists():
        return False
    record = json.loads(done.read_text())
    return record.get("fingerprint") == print_ and record.get("pipeline") == pipeline


def _relative(output: Path, workdir: Path) -> str:
    return output.relative_to(workdir).as_posix()  # the schema keeps every output inside the workdir


def start(workdir: Path, stage: str, pipeline: str, output: Path) -> None:
    """Clear this stage's earlier (stale or partial) output and mark it running.

    Refuses an output folder that holds files this stage did not write (a marker records the folder).
    """
    done, running = _done_file(workdir, stage), _running_file(workdir, stage)
    marker = done if done.is_file() else running if running.is_file() else None
    record = json.loads(marker.read_text()) if marker is not None else {}
    here = _relative(output, workdir)
    ours = marker is not None and record.get("output", here) == here  # markers before outputs were recorded: here
    if output.is_symlink():
        raise StageError(f"stage {stage!r}: output folder {output} is a symlink; a stage deletes its output: remove it")
    if output.exists() and (output.is_file() or any(output.iterdir())) and not ours:
        raise StageError(
            f"stage {stage!r}: output folder {output} holds files that pipeline {pipeline!r} did not write; "
            f"move them away or choose another workdir"
        )
    if marker is not None:
        owner = record.get("pipeline")
        if owner != pipeline:
            raise StageError(
                f"stage {stage!r}: {workdir} belongs to pipeline {owner!r}, not {pipeline!r}; choose another workdir"
            )
    if output.exists():
        shutil.rmtree(output) if output.is_dir() else output.unlink()
    done.unlink(missing_ok=True)
    running.parent.mkdir(parents=True, exist_ok=True)
    running.write_text(json.dumps({"pipeline": pipeline, "stage": stage, "output": here, "started": time.time()}))


def finish(workdir: Path, stage: str, pipeline: str, print_: str) -> None:
    """Record the stage as complete (written last, so a crash before here leaves it 'running')."""
    running = json.loads(_running_file(workdir, stage).read_text())
    record = {"pipeline": pipeline, "stage": stage, "output": running["output"], "fingerprint": print_}
    _done_file(workdir, stage).write_text(json.dumps({**record, "finished": time.time()}))
    _running_file(workdir, stage).unlink(missing_ok=True)
