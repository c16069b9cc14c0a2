"""What a submitted job will run: the job file plus overrides, validated here, adjusted for a cluster.

`prepare_job` classifies a YAML the way `rtrain.any_config.resolve_any` does (training job,
pipeline, Tune study or ablations file), validates it with the same code `rtrain train` /
`rtrain run` / `rtrain tune` use, and then fixes what cannot work inside a cluster job:

- outputs: a relative `output.storage_path` (pipelines: `workdir`; Tune: `storage_path`) would land
  inside the job's temporary working_dir and vanish, so it is refused; an `s3://` / `gs://` (any
  pyarrow/fsspec URI) storage path of a job or pipeline is kept for the upload and the job writes to
  a staging folder on the cluster (`rtrain.cluster.entry` copies it to the URI while and after it runs);
- the run name is fixed now (`<name>-<timestamp>` when unset), so the run dir is known before submission;
- `scaling.address` is cleared: the job runs inside the cluster and joins it.

A job or pipeline is validated again after these changes and shipped as that YAML: exactly what the
cluster runs. A Tune file ships as it is (its base job may be named relative to it) and runs with the
same variant and overrides it was validated with here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rtrain.cluster.storage import is_uri, join_uri
from rtrain.config.load import ConfigError, apply_overrides, dump_yaml, load_yaml, resolve, resolve_job
from rtrain.config.schema import JobConfig
from rtrain.pipeline.schema import PipelineConfig

Kind = Literal["train", "run", "tune"]


@dataclass
class JobSpec:
    """A validated job, ready to package: its kind, shipped YAML, outputs and the training job inside."""

    source: Path
    kind: Kind
    config: Any
    yaml_text: str | None  # the validated config the cluster runs; None: the file ships as it is (Tune)
    train_job: JobConfig | None  # the training job (a pipeline's train stage, a study's base job) for the plan
    outputs: str | None  # where the run lands: a path on the cluster's shared storage, or a URI
    staging: str | None = None  # for a URI: the cluster folder the job writes and the upload copies
    args: list[str] = field(default_factory=list)  # command arguments after the config file (Tune)
    notes: list[str] = field(default_factory=list)


def job_kind(source: Path, raw: dict[str, Any]) -> Kind:
    """train, run or tune, as `resolve_any` classifies the file; refuses what is no cluster job."""
    from rtrain.any_config import resolve_any

    try:
        config: Any = resolve_any(source)
    except ConfigError:  # invalid on its own (overrides may complete it): classify by its top-level keys
        return "run" if "stages" in raw else "tune" if {"search_space", "studies"} & set(raw) else "train"
    module = type(config).__module__
    if isinstance(config, JobConfig):
        return "train"
    if isinstance(config, PipelineConfig):
        return "run"
    if "tune" in module:
        return "tune"
    raise ConfigError(
        f"{source} is a {type(config).__name__} ({module}), not something to run on a cluster: "
        "submit a training job (rtrain train), a pipeline (rtrain run) or a Tune file (rtrain tune)"
    )


def _check_outputs(source: Path, key: str, value: str, uri_ok: bool = True) -> None:
    """Refuse a relative output location: it would resolve inside the job's temporary working_dir."""
    if is_uri(value) and not uri_ok:
        raise ConfigError(
            f"{source}: {key}={value!r}: Tune writes its study folder with file APIs; use an absolute path on "
            f"storage every node shares (e.g. {key}=/mnt/shared/rtrain/tune)"
        )
    if not is_uri(value) and not Path(value).is_absolute():
        raise ConfigError(
            f"{source}: {key}={value!r} is relative; a submitted job runs in a temporary working_dir on the "
            f"cluster, so its outputs would be lost: set an absolute path on storage every node shares "
            f"(e.g. {key}=/mnt/shared/rtrain/runs) or an s3:// / gs:// URI"
        )


def _prepare_train(source: Path, cfg: JobConfig, staging_root: str, stamp: str) -> JobSpec:
    notes: list[str] = []
    storage = cfg.output.storage_path
    _check_outputs(source, "output.storage_path", storage)
    name = cfg.output.name or f"{cfg.name}-{stamp}"
    updates: dict[str, Any] = {"output.name": name}
    if cfg.scaling.address is not None:
        updates["scaling.address"] = None
        notes.append(f"scaling.address={cfg.scaling.address!r} dropped: the job runs inside the cluster and joins it")
    staging = None
    if is_uri(storage):
        staging = f"{staging_root.rstrip('/')}/{name}"
        updates["output.storage_path"] = staging_root
        outputs = join_uri(storage, name)
        notes.append(f"the job writes to {staging} on the cluster; rtrain.cluster.entry copies it to {outputs}")
    else:
        outputs = f"{storage.rstrip('/')}/{name}"
    shipped = resolve_job(apply_overrides(cfg.model_dump(mode="json"), updates), where=str(source))
    return JobSpec(source, "train", shipped, dump_yaml(shipped), shipped, outputs, staging, notes=notes)


def _prepare_run(source: Path, cfg: PipelineConfig, staging_root: str, stamp: str) -> JobSpec:
    from rtrain.pipeline.runner import train_job

    notes: list[str] = []
    workdir = cfg.workdir
    _check_outputs(source, "workdir", workdir)
    staging = None
    shipped = cfg
    if is_uri(workdir):
        staging = f"{staging_root.rstrip('/')}/{cfg.name}-{stamp}"
        notes.append(f"the pipeline works in {staging} on the cluster; rtrain.cluster.entry copies it to {workdir}")
        shipped = resolve(
            PipelineConfig, apply_overrides(cfg.model_dump(mode="json"), {"workdir": staging}), where=str(source)
        )
    job = train_job(shipped, shipped.stages.train) if shipped.stages.train is not None else None
    return JobSpec(source, "run", shipped, dump_yaml(shipped), job, workdir, staging, notes=notes)


def _prepare_tune(source: Path, raw: dict[str, Any], overrides: Sequence[str], variant: str | None) -> JobSpec:
    """Validate a study or ablations file with rtrain.tune's own loaders (its override syntax and variants)."""
    base = None
    if "studies" in raw:
        from rtrain.tune.ablations import load_ablations

        config: Any = load_ablations(source, variant, list(overrides))
    else:
        from rtrain.tune.study import load_study

        config = load_study(source, variant, list(overrides))
        base = resolve_job(config.base_job, where=config.base_where)
    storage = config.config.storage_path
    _check_outputs(source, "storage_path", storage, uri_ok=False)
    args = [*(["--variant", variant] if variant else []), *overrides]
    notes = ["the plan is the study's base job; each trial changes the keys of its search space"] if base else []
    return JobSpec(source, "tune", config, None, base, storage, None, args=args, notes=notes)


def prepare_job(
    source: str | Path,
    overrides: Sequence[str] = (),
    staging_root: str = "/tmp/rtrain-staging",
    variant: str | None = None,
) -> JobSpec:
    """Validate and adjust a job file for a cluster; ConfigError (naming the file and key) on any problem."""
    path = Path(source)
    if not Path(staging_root).is_absolute():
        raise ConfigError(
            f"--staging-dir {staging_root!r}: give an absolute path on the cluster (e.g. /mnt/shared/staging)"
        )
    raw = load_yaml(path)
    kind = job_kind(path, raw)
    if kind == "tune":
        return _prepare_tune(path, raw, overrides, variant)
    if variant is not None:
        raise ConfigError(f"--variant {variant}: only Tune files have variants; {path} is a {kind} file")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    merged = apply_overrides(raw, list(overrides))
    if kind == "run":
        return _prepare_run(path, resolve(PipelineConfig, merged, where=str(path)), staging_root, stamp)
    return _prepare_train(path, resolve_job(merged, where=str(path)), staging_root, stamp)
