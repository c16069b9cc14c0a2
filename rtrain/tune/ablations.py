"""An ablations file (hard negatives, diversity, data scale): validated, with its three studies loaded.

`rtrain.tune.ablations_run` runs them and `rtrain.tune.report` writes the findings report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rtrain.config.load import ConfigError, format_validation_error, load_yaml, read_source
from rtrain.tune.schema import AblationsConfig
from rtrain.tune.study import Study, load_study, select_variant

log = logging.getLogger("rtrain.tune")

FINDINGS = ("negatives", "diversity", "data_scale")


@dataclass
class Ablations:
    """A validated ablations file and its three loaded studies."""

    config: AblationsConfig
    where: str
    studies: dict[str, Study]
    cwd: Path

    @property
    def folder(self) -> Path:
        return (self.cwd / self.config.storage_path).resolve() / self.config.name

    @property
    def report_dir(self) -> Path:
        return (self.cwd / self.config.report_dir).resolve()


def load_ablations(
    source: str | Path | Mapping[str, Any],
    variant: str | None = None,
    overrides: Sequence[str] = (),
    cwd: Path | None = None,
) -> Ablations:
    """Validate the file, then load each study (its variant, its overrides, then the CLI's) under one folder."""
    data, where = read_source(source, "ablations")
    data = select_variant(data, variant, where)
    try:
        config = AblationsConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, AblationsConfig, where)) from None
    cwd = cwd or Path.cwd()
    base_dir = Path(source).parent if isinstance(source, (str, Path)) else cwd
    storage = (cwd / config.storage_path).resolve() / config.name
    studies = {}
    for key in FINDINGS:
        ref = getattr(config.studies, key)
        path = Path(ref.path) if Path(ref.path).is_file() else base_dir / ref.path
        if not path.is_file():
            raise ConfigError(f"{where}: studies.{key}.path = {ref.path!r} not found (nor under {base_dir})")
        studies[key] = load_study(path, config.variant, [*ref.overrides, *overrides, f"storage_path={storage}"], cwd)
    return Ablations(config=config, where=where, studies=studies, cwd=cwd)


def validate_ablations_file(path: str | Path) -> AblationsConfig:
    """The ablations file at its top level and in every variant, with all its studies (for shipped-file checks)."""
    for variant in load_yaml(path).get("variants") or {}:
        load_ablations(path, variant)
    return load_ablations(path).config
