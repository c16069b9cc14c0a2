"""Load a study: pick the variant, apply CLI overrides, validate, and check every search-space key against the job.

`load_study` is the one way a study file becomes a `Study` (the CLI, the shipped-YAML test and the
ablations runner use it). A `Study` knows its folder, its cached synthetic datasets and how to turn
a trial's sampled values into job overrides; the job itself is always resolved by
`rtrain.config.load.resolve_job`, the same path `rtrain train` takes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rtrain.checkpoint import SCORE
from rtrain.config.load import (
    ConfigError,
    apply_overrides,
    format_validation_error,
    load_yaml,
    parse_override,
    read_source,
    resolve,
    resolve_job,
)
from rtrain.config.schema import JobConfig
from rtrain.errors import problems_message
from rtrain.tune.schema import StudyConfig

PLACEHOLDER = re.compile(r"\{(study|synth\.[A-Za-z0-9_-]+)\}")
MANAGED_KEYS = ("output.storage_path", "output.name", "logging.group", "logging.tags")  # set per trial
DATA_DIR = "_data"


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`: mappings merge key by key, anything else is replaced.

    Under `search_space` each axis is replaced whole, and an axis set to null is removed.
    """
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if key == "search_space" and isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            space = dict(out[key])
            for axis, dist in value.items():
                if dist is None:
                    space.pop(axis, None)
                else:
                    space[axis] = copy.deepcopy(dist)
            out[key] = space
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def select_variant(data: Mapping[str, Any], variant: str | None, where: str) -> dict[str, Any]:
    """The file's top level (variant None) or that mapping with `variants[variant]` merged over it."""
    if variant is None:
        return dict(data)
    variants = data.get("variants") or {}
    if variant not in variants:
        raise ConfigError(
            f"{where}: variant {variant!r} is not defined; defined variants: {sorted(variants) or 'none'}"
        )
    merged = deep_merge(data, variants[variant])
    if "name" not in variants[variant] and "name" in data:
        merged["name"] = f"{data['name']}-{variant}"  # a variant never shares the default's study folder
    return merged


def apply_study_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Study-level `key=value` overrides; `job.<dotted key>=value` adds a job override for every trial."""
    job: dict[str, Any] = {}
    rest: list[str] = []
    for text in overrides:
        path, value = parse_override(text)
        if path[0] == "job":
            if len(path) == 1:
                raise ConfigError(f"override {text!r}: name a job key after 'job.', e.g. job.train.max_steps=5")
            job[".".join(path[1:])] = value
        elif path[0] in ("search_space", "variants"):
            raise ConfigError(f"override {text!r}: {path[0]} keys hold dots; edit the study file instead")
        else:
            rest.append(text)
    out = apply_overrides(dict(data), rest)
    if job:
        out["overrides"] = {**(out.get("overrides") or {}), **job}
    return out


def substitute(value: Any, mapping: Mapping[str, str]) -> Any:
    """`value` with `{study}` and `{synth.NAME}` replaced in every string; unknown names are errors."""
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in mapping:
                known = ", ".join("{" + k + "}" for k in sorted(mapping))
                raise ConfigError(
                    f"'{{{name}}}' in {value!r} names no dataset of the study's synth section; known: {known}"
                )
            return mapping[name]

        return PLACEHOLDER.sub(repl, value)
    if isinstance(value, Mapping):
        return {k: substitute(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, mapping) for v in value]
    return value


def bundle_label(values: Mapping[str, Any]) -> str:
    """The Tune value (and table cell) that stands for a bundle of overrides."""
    return ",".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in values.items())


def load_base_job(ref: str | Mapping[str, Any], study_file: Path | None) -> tuple[dict[str, Any], str]:
    """The base job mapping (a pipeline's train-stage job when `ref` is a pipeline) and where it came from."""
    if isinstance(ref, Mapping):
        return copy.deepcopy(dict(ref)), "base_job"
    tried = [Path(ref).expanduser()]
    if study_file is not None and not tried[0].is_absolute():
        tried.append(study_file.parent / ref)
    path = next((p for p in tried if p.is_file()), None)
    if path is None:
        raise ConfigError(f"base_job {ref!r} not found (looked at {', '.join(str(p) for p in tried)})")
    data = load_yaml(path)
    if "stages" in data:  # the pipeline's train job, its data files under the pipeline's workdir
        from rtrain.pipeline.schema import PipelineConfig

        pipeline = resolve(PipelineConfig, data, where=str(path))
        if pipeline.stages.train is None:
            raise ConfigError(f"base_job {path} is a pipeline without stages.train: point at a training job")
        return pipeline.stages.train.job_mapping(pipeline.name, Path(pipeline.workdir).resolve()), str(path)
    return data, str(path)


def synth_dir(storage: Path, name: str, config: Any) -> Path:
    """The shared cache folder of one synthetic dataset: same config, same folder, across studies."""
    digest = hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]
    return storage / DATA_DIR / f"synth-{name}-{digest}"


@dataclass
class Study:
    """A validated study plus everything needed to build its trials' jobs."""

    config: StudyConfig
    where: str
    base_job: dict[str, Any]
    base_where: str
    cwd: Path = field(default_factory=Path.cwd)

    @property
    def storage(self) -> Path:
        return (self.cwd / Path(self.config.storage_path).expanduser()).resolve()

    @property
    def study_dir(self) -> Path:
        return self.storage / self.config.name

    def synth_dirs(self) -> dict[str, Path]:
        return {name: synth_dir(self.storage, name, cfg) for name, cfg in self.config.synth.items()}

    def placeholders(self) -> dict[str, str]:
        out = {f"synth.{name}": str(path) for name, path in self.synth_dirs().items()}
        out["study"] = str(self.study_dir)
        return out

    def base(self) -> dict[str, Any]:
        """The base job with placeholders filled in."""
        return substitute(self.base_job, self.placeholders())

    def fixed_overrides(self) -> dict[str, Any]:
        """Job overrides every trial shares: the study's overrides, trial resources and W&B grouping."""
        cfg = self.config
        out: dict[str, Any] = dict(cfg.overrides)
        for key in ("num_workers", "cpus_per_worker", "use_gpu"):
            value = getattr(cfg.trial, key)
            if value is not None:
                out[f"scaling.{key}"] = value
        if cfg.wandb.enabled is not None:
            out["logging.wandb"] = cfg.wandb.enabled
        if cfg.wandb.project is not None:
            out["logging.project"] = cfg.wandb.project
        return substitute(out, self.placeholders())

    def bundles(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Bundle axis -> label (of the value as written) -> the overrides it stands for (placeholders filled)."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for key, dist in self.config.search_space.items():
            if "." not in key:
                out[key] = {bundle_label(v): substitute(v, self.placeholders()) for v in dist.values}
        return out

    def sampled_overrides(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's sampled values as job overrides (bundles expanded, placeholders filled)."""
        bundles = self.bundles()
        out: dict[str, Any] = {}
        for key, value in sampled.items():
            if key in bundles:
                if value not in bundles[key]:
                    raise ConfigError(f"search_space.{key}: {value!r} is not one of its bundles {list(bundles[key])}")
                out.update(bundles[key][value])
            else:
                out[key] = substitute(value, self.placeholders())
        return out

    def job(
        self, sampled: Mapping[str, Any], extra: Mapping[str, Any] | None = None, where: str | None = None
    ) -> JobConfig:
        """The resolved job of one trial: base + fixed overrides + sampled values (+ extra)."""
        overrides = {**self.fixed_overrides(), **self.sampled_overrides(sampled), **(extra or {})}
        return resolve_job(self.base(), overrides, where=where or f"{self.where}: job")


def _check_against_job(study: Study) -> None:
    """Resolve the job once per candidate value of every axis; one ConfigError lists every failure."""
    cfg = study.config
    managed = [k for k in (*cfg.overrides, *cfg.search_space) if k in MANAGED_KEYS]
    bundled = [k for values in study.bundles().values() for v in values.values() for k in v if k in MANAGED_KEYS]
    if managed or bundled:
        raise ConfigError(
            f"{study.where}: {sorted(set(managed + bundled))} are set per trial by the study; remove them"
        )
    base = study.job({}, where=f"{study.where}: base_job {study.base_where} + overrides")
    problems: list[str] = []
    for key, dist in cfg.search_space.items():
        candidates = (
            [{key: label} for label in study.bundles()[key]] if "." not in key else [{key: v} for v in dist.values]
        )
        for sampled in candidates:
            try:
                study.job(sampled, where=f"search_space.{key} = {sampled[key]!r}")
            except ConfigError as err:
                problems.append(str(err))
    if (cfg.metric == SCORE or cfg.metric.startswith("eval/")) and base.eval is None:
        problems.append(
            f"metric {cfg.metric!r} comes from the eval suite, but the job has no eval section: add "
            "eval: {suite: ...} to the base job or overrides, or set metric: loss with mode: min"
        )
    if problems:
        raise ConfigError(problems_message(study.where, problems))


def load_study(
    source: str | Path | Mapping[str, Any],
    variant: str | None = None,
    overrides: Sequence[str] = (),
    cwd: Path | None = None,
) -> Study:
    """A validated `Study` from a YAML file (or mapping), a variant name and study-level overrides."""
    data, where = read_source(source, "study")
    data = apply_study_overrides(select_variant(data, variant, where), overrides)
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, StudyConfig, where)) from None
    study_file = Path(source) if isinstance(source, (str, Path)) else None
    base_job, base_where = load_base_job(config.base_job, study_file)
    study = Study(config=config, where=where, base_job=base_job, base_where=base_where, cwd=cwd or Path.cwd())
    _check_against_job(study)
    return study


def validate_study_file(path: str | Path) -> list[Study]:
    """The study at its top level and in every variant, each fully validated (for shipped-file checks)."""
    data = load_yaml(path)
    return [load_study(path)] + [load_study(path, variant=v) for v in (data.get("variants") or {})]
