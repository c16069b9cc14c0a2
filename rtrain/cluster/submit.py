"""`rtrain submit`: validate a job here, package it and hand it to Ray's Job Submission SDK.

Order matters: the config is resolved and validated (and with --dry-run, planned) before any
connection is made, so a bad config never reaches the cluster.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rtrain.cluster.client import ClusterError, connect
from rtrain.cluster.package import (
    CONFIG_DIR,
    DEFAULT_EXCLUDES,
    KNOWN_SECRETS,
    entrypoint,
    passthrough_env,
    read_requirements,
    runtime_env,
    shipped_path,
    stage_working_dir,
)
from rtrain.cluster.plan import build_plan, check_data, format_plan
from rtrain.cluster.spec import JobSpec, prepare_job

METADATA_OUTPUTS = "rtrain_outputs"  # job metadata keys `rtrain jobs` reads back
METADATA_KIND = "rtrain_kind"
METADATA_JOB = "rtrain_job"


@dataclass
class SubmitOptions:
    """Everything `rtrain submit` takes besides the job file and its overrides."""

    address: str | None = None
    project: Path = field(default_factory=Path.cwd)
    pip: list[str] = field(default_factory=list)
    image: str | None = None
    env: list[str] = field(default_factory=list)  # extra variable names to pass through
    excludes: list[str] = field(default_factory=list)
    max_file_mb: float = 10.0
    staging_root: str = "/tmp/rtrain-staging"
    sync_every: float = 300.0
    submission_id: str | None = None
    entrypoint_num_cpus: float | None = None
    gpus_per_node: int = 8
    variant: str | None = None  # a Tune file's variant
    dry_run: bool = False
    allow_insecure_http: bool = False  # send the Ray token over plain http to a non-loopback host


@dataclass
class Submitted:
    """A submitted job: its id, the dashboard it went to and where its outputs land."""

    job_id: str
    address: str
    outputs: str | None
    entrypoint: str
    env_names: list[str]


def config_dirs(spec: JobSpec, project: Path) -> list[Path]:
    """Where shipped model configs (architecture only) live: `configs/` next to the job file and in jobs/."""
    return [spec.source.resolve().parent / "configs", project / "jobs" / "configs"]


def submit_job(
    job_file: str | Path,
    overrides: Sequence[str],
    options: SubmitOptions,
    out: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    connect_fn: Callable[[str | None, bool], tuple[object, str]] | None = None,
) -> Submitted | None:
    """Validate, plan (--dry-run stops here and returns None), package and submit; the submitted job."""
    out = out or sys.stdout
    spec = prepare_job(job_file, overrides, staging_root=options.staging_root, variant=options.variant)
    config_rel = shipped_path(spec, options.project) if not options.image else f"{CONFIG_DIR}/{spec.kind}.yaml"
    entry = entrypoint(spec, config_rel, inline=bool(options.image), sync_every=options.sync_every)
    data = check_data(spec.train_job, options.project.resolve()) if spec.train_job else None
    if options.dry_run:
        dirs = config_dirs(spec, options.project)
        plan = build_plan(spec.train_job, dirs, options.gpus_per_node) if spec.train_job else None
        print(format_plan(spec, plan, entry, data), file=out)
        return None
    if data is not None:
        print(f"data: {data}", file=out)
    for note in spec.notes:
        print(f"note: {note}", file=out)
    environ = os.environ if environ is None else environ
    secrets = passthrough_env(options.env, environ)
    missing = [name for name in options.env if name not in secrets]
    if missing:
        raise ClusterError(f"--env {' '.join(missing)}: not set in your environment, so nothing to pass to the job")
    for name in KNOWN_SECRETS:
        if environ.get(name) and name not in secrets:
            print(
                f"note: {name} is set here but not sent; the cluster's own secret is used if it has one "
                f"(README: Secrets), or pass --env {name}",
                file=out,
            )
    pip = read_requirements(options.pip)
    with tempfile.TemporaryDirectory(prefix="rtrain-submit-") as tmp:
        working_dir = None
        if not options.image:
            package = stage_working_dir(
                spec,
                options.project.resolve(),
                Path(tmp) / "working_dir",
                excludes=[*DEFAULT_EXCLUDES, *options.excludes],
                max_file_bytes=int(options.max_file_mb * 1024**2),
            )
            working_dir = package.directory
            print(
                f"working_dir: {package.files} files, {package.bytes / 1024**2:.1f} MiB from {options.project}",
                file=out,
            )
            if package.skipped_large:
                print(f"left out (over {options.max_file_mb:g} MiB): {', '.join(package.skipped_large)}", file=out)
        env = runtime_env(working_dir, secrets, pip=pip, image=options.image)
        client, url = (connect_fn or connect)(options.address, options.allow_insecure_http)
        metadata = {METADATA_KIND: spec.kind, METADATA_JOB: str(spec.source)}
        if spec.outputs:
            metadata[METADATA_OUTPUTS] = spec.outputs
        try:
            job_id = client.submit_job(  # type: ignore[attr-defined]
                entrypoint=entry,
                runtime_env=env,
                metadata=metadata,
                submission_id=options.submission_id,
                entrypoint_num_cpus=options.entrypoint_num_cpus,
            )
        except (RuntimeError, ValueError, ConnectionError) as err:
            reason = (str(err).strip() or type(err).__name__).splitlines()[-1]
            for value in secrets.values():  # Ray may echo the runtime_env back in its error
                reason = reason.replace(value, "****")
            raise ClusterError(f"{url} refused the job: {reason}") from None
    names = sorted(secrets)
    print(f"submitted {job_id} to {url}", file=out)
    print(f"  entrypoint: {entry if not options.image else entry[:120] + ' ...'}", file=out)
    if names:
        print(f"  env passed through (values not shown): {', '.join(names)}", file=out)
        print("  (Ray keeps env_vars in the job record: anyone with dashboard access can read them)", file=out)
    if spec.outputs:
        print(f"  outputs:    {spec.outputs}", file=out)
    print(f"  follow:     rtrain jobs logs {job_id} --follow --address {url}", file=out)
    return Submitted(job_id=job_id, address=url, outputs=spec.outputs, entrypoint=entry, env_names=names)
