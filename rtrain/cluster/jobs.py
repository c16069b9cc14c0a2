"""`rtrain jobs status|logs|stop|list|fetch`: Ray's Job Submission SDK, with rtrain's outputs shown.

Environment variable values are never printed: job info shows the names of `runtime_env.env_vars`
only, and log text has the values of the variables rtrain passes through masked.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from rtrain.cluster.client import ClusterError
from rtrain.cluster.package import KNOWN_SECRETS
from rtrain.cluster.storage import download_tree, is_uri, join_uri
from rtrain.cluster.submit import METADATA_JOB, METADATA_KIND, METADATA_OUTPUTS

MASK = "****"


def _call(fn: Any, *args: Any) -> Any:
    """Call an SDK method; a missing job or refused request becomes a ClusterError with Ray's reason."""
    try:
        return fn(*args)
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise ClusterError(f"{fn.__name__}({', '.join(map(repr, args))}): {reason}") from None


def secret_values(extra_names: Iterable[str] = ()) -> list[str]:
    """Values of the known secret variables (and `extra_names`) set here, to mask them in printed text."""
    names = [*KNOWN_SECRETS, *extra_names]
    return [os.environ[n] for n in dict.fromkeys(names) if len(os.environ.get(n, "")) >= 6]


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by ****."""
    for value in secrets:
        text = text.replace(value, MASK)
    return text


def _time(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def outputs_of(info: Any) -> str | None:
    """Where a job submitted by rtrain writes its run (from the job's metadata)."""
    return (info.metadata or {}).get(METADATA_OUTPUTS)


def status(client: Any, job_id: str, out: TextIO | None = None) -> str:
    """Print a job's status, Ray's message (the failure reason), times and outputs; returns the status."""
    out = out or sys.stdout
    info = _call(client.get_job_info, job_id)
    env = dict(info.runtime_env or {})
    env_names = sorted((env.pop("env_vars", None) or {}).keys())
    state = str(getattr(info.status, "value", info.status))
    lines = [
        ("job", job_id),
        ("status", state),
        ("message", mask(info.message or "", secret_values())),
        ("entrypoint", info.entrypoint),
        ("started", _time(info.start_time)),
        ("ended", _time(info.end_time)),
        (
            "runtime_env",
            ", ".join(sorted(env)) + (f"; env_vars: {', '.join(env_names)} (values hidden)" if env_names else ""),
        ),
    ]
    if outputs_of(info):
        lines.append(("outputs", outputs_of(info)))
    if info.driver_exit_code is not None:
        lines.append(("exit code", str(info.driver_exit_code)))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key.ljust(width)}  {value}", file=out)
    return state


def logs(client: Any, job_id: str, out: TextIO | None = None) -> None:
    """Print everything the job's entrypoint wrote so far."""
    out = out or sys.stdout
    print(mask(_call(client.get_job_logs, job_id), secret_values()), end="", file=out)


def follow(client: Any, job_id: str, out: TextIO | None = None) -> str:
    """Stream the job's logs until it ends; returns its final status (SUCCEEDED, FAILED, STOPPED)."""
    out = out or sys.stdout
    secrets = secret_values()
    _call(client.get_job_status, job_id)  # a wrong id fails here with Ray's reason

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            print(mask(chunk, secrets), end="", file=out, flush=True)

    asyncio.run(tail())
    final = _call(client.get_job_status, job_id)
    while not final.is_terminal():  # the log stream can close a moment before the status settles
        time.sleep(0.5)
        final = _call(client.get_job_status, job_id)
    return str(final.value)


def stop(client: Any, job_id: str, wait_s: float = 0.0, out: TextIO | None = None) -> str:
    """Ask Ray to stop the job; with `wait_s`, wait up to that long for it to end. Returns the status."""
    out = out or sys.stdout
    stopped = _call(client.stop_job, job_id)
    print(f"{job_id}: {'stop requested' if stopped else 'already finished'}", file=out)
    deadline = time.monotonic() + wait_s
    current = _call(client.get_job_status, job_id)
    while not current.is_terminal() and time.monotonic() < deadline:
        time.sleep(0.5)
        current = _call(client.get_job_status, job_id)
    return str(current.value)


def list_jobs(client: Any, out: TextIO | None = None) -> int:
    """Print the cluster's submitted jobs, newest first; returns how many."""
    out = out or sys.stdout
    jobs = [j for j in _call(client.list_jobs) if getattr(j, "submission_id", None)]
    jobs.sort(key=lambda j: j.start_time or 0, reverse=True)
    rows = [("JOB ID", "STATUS", "STARTED", "KIND", "JOB FILE", "OUTPUTS")]
    for j in jobs:
        meta = j.metadata or {}
        rows.append(
            (
                j.submission_id,
                str(j.status.value),
                _time(j.start_time),
                meta.get(METADATA_KIND, "-"),
                meta.get(METADATA_JOB, "-"),
                meta.get(METADATA_OUTPUTS, "-"),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip(), file=out)
    return len(jobs)


def fetch(client: Any, job_id: str, out_dir: Path, sub: str = "", out: TextIO | None = None) -> Path:
    """Copy the job's outputs (or the part `sub` of them, e.g. 'model') to `out_dir`, from a path or URI."""
    out = out or sys.stdout
    info = _call(client.get_job_info, job_id)
    where = outputs_of(info)
    if not where:
        raise ClusterError(f"{job_id} has no rtrain outputs recorded (not submitted with `rtrain submit`?)")
    source = join_uri(where, sub) if sub else where
    if not is_uri(source) and not Path(source).exists():
        raise ClusterError(
            f"{source} is not visible from this machine: it is on the cluster's storage; fetch from a machine "
            "that mounts it, or submit with output.storage_path set to an s3:// / gs:// URI"
        )
    path = download_tree(source, out_dir)
    print(f"fetched {source} -> {path}", file=out)
    return path
