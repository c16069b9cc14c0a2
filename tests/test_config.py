"""Config: YAML + overrides, every problem reported at once, every shipped YAML loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rtrain.config import ConfigError, JobConfig, apply_overrides, dump_yaml, resolve_job
from rtrain.config.load import parse_override

ROOT = Path(__file__).resolve().parents[1]
BASE = {"model": {"name_or_path": "m"}, "data": {"train_files": ["pairs.jsonl"]}}


def test_defaults_and_overrides_parse_yaml_values() -> None:
    cfg = resolve_job(BASE, ["train.learning_rate=1e-4", "lora.target_modules=[query,value]", "train.max_steps=7"])
    assert cfg.train.learning_rate == pytest.approx(1e-4)
    assert cfg.lora.target_modules == ["query", "value"]
    assert cfg.train.max_steps == 7
    assert cfg.deepspeed.zero_stage == 2 and cfg.train.backend == "deepspeed"


def test_mapping_overrides_and_new_sections() -> None:
    data = apply_overrides(BASE, {"loss.temperature": 0.02, "deepspeed.overrides.wall_clock_breakdown": True})
    cfg = JobConfig.model_validate(data)
    assert cfg.loss.temperature == 0.02
    assert cfg.deepspeed.overrides == {"wall_clock_breakdown": True}
    assert "loss" not in BASE  # the input is not mutated


def test_all_problems_reported_at_once_with_key_value_and_allowed() -> None:
    bad = {
        "model": {"name_or_path": "m", "pooling": "avg", "typo_key": 1},
        "data": {"train_files": ["x.jsonl"]},
        "train": {"lr": 3},
    }
    with pytest.raises(ConfigError) as err:
        resolve_job(bad, ["loss.temperature=-1", "scaling.num_workers=0"])
    msg = str(err.value)
    assert "5 problem(s)" in msg
    assert "model.pooling = 'avg'" in msg and "'mean', 'cls' or 'last_token'" in msg
    assert "model.typo_key = 1: unknown key; allowed here:" in msg and "pooling" in msg
    assert "train.lr = 3: unknown key" in msg and "learning_rate" in msg
    assert "loss.temperature = -1" in msg and "greater than 0" in msg
    assert "scaling.num_workers = 0" in msg


def test_missing_required_and_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model: required key is missing"):
        resolve_job({"data": {"train_files": ["a"]}})
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_job(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        resolve_job(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("no_equals_sign")


def test_cross_field_check_names_both_keys() -> None:
    with pytest.raises(ConfigError, match="loss.mini_batch_size=64 is larger than train.batch_size_per_worker=16"):
        resolve_job(BASE, ["loss.cached=true", "loss.mini_batch_size=64"])


def test_dump_round_trips(tmp_path: Path) -> None:
    cfg = resolve_job(BASE, ["model.query_prefix='query: '", "logging.tags=[a,b]"])
    path = tmp_path / "job.yaml"
    path.write_text(dump_yaml(cfg))
    assert resolve_job(path) == cfg


def shipped_yaml_files() -> list[Path]:
    return sorted((ROOT / "jobs").rglob("*.yaml")) + sorted((ROOT / "tuning").rglob("*.yaml"))


def test_every_shipped_yaml_resolves() -> None:
    from rtrain.any_config import resolve_any

    files = shipped_yaml_files()
    assert {"quickstart.yaml", "minilm_lora.yaml", "quick.yaml"} <= {p.name for p in files}
    for path in files:
        resolve_any(path)  # raises ConfigError naming the file and key on any problem
    assert all(yaml.safe_load(p.read_text()) for p in files)


def test_config_show_prints_every_key_with_its_description_as_a_job_that_resolves_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rtrain.cli import main

    assert main(["config", "show", str(ROOT / "jobs/minilm_lora.yaml"), "train.max_steps=3"]) == 0
    shown = capsys.readouterr().out
    assert "  max_steps: 3" in shown and "# Optimizer steps; overrides epochs when set." in shown
    assert "  mini_batch_size: 32" in shown  # a default the file never sets
    (tmp_path / "shown.yaml").write_text(shown)
    assert resolve_job(tmp_path / "shown.yaml") == resolve_job(ROOT / "jobs/minilm_lora.yaml", ["train.max_steps=3"])


def test_config_show_refuses_a_bad_key_and_train_help_lists_the_sections(capsys: pytest.CaptureFixture[str]) -> None:
    from rtrain.cli import main

    assert main(["config", "show", str(ROOT / "jobs/minilm_lora.yaml"), "bogus.key=1"]) == 2
    assert "bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    for section in JobConfig.model_fields:
        if section != "name":
            assert f"\n  {section} " in help_text


def test_every_job_key_has_a_description_for_config_show() -> None:
    from pydantic import BaseModel

    from rtrain.config.describe import section_model

    def undescribed(model: type[BaseModel], prefix: str = "") -> list[str]:
        out = []
        for name, info in model.model_fields.items():
            section = section_model(info)
            if section is not None:
                out += undescribed(section, f"{prefix}{name}.")
            elif not info.description:
                out.append(prefix + name)
        return out

    assert undescribed(JobConfig) == []


def test_a_non_utf8_yaml_is_one_error_naming_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(b"name: x\nmodel: {name_or_path: m}\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"job\.yaml:3: not UTF-8 text .*save the file as UTF-8"):
        resolve_job(path)
