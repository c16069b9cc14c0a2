"""rtrain.synth: template-based multilingual synthetic pairs from CLDR (babel) slot values."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rtrain.cli import main
from rtrain.data.schema import PAIR_SCHEMA, row_problems
from rtrain.synth import SynthConfig, available_languages, available_tasks, command, generate, kinds
from rtrain.synth.config import CROSS_LINGUAL_TASKS
from rtrain.synth.entities import SPLITS
from rtrain.synth.generate import build_context
from rtrain.synth.slots import language_script, localizer
from rtrain.synth.spec import KINDS, SECTIONS
from rtrain.synth.tasks import build_shard
from rtrain.synth.templates import TEMPLATE_DIR, TemplateError, load_language

FILES = ("train.parquet", "heldout.parquet")


def _rows(folder: Path, split: str = "train") -> list[dict]:
    return pq.read_table(folder / f"{split}.parquet").to_pylist()


def _texts(row: dict) -> list[str]:
    return [row["query"], row["positive"], *row["negatives"]]


@pytest.fixture(scope="module")
def all_languages_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthConfig, Path, dict]:
    """Every language and task, a few rows per shard."""
    cfg = SynthConfig(
        examples_per_task_language=6, heldout_examples_per_task_language=3, cross_lingual_rate=0.3, seed=11
    )
    out = tmp_path_factory.mktemp("synth-all")
    return cfg, out, generate(cfg, out)


def test_languages_tasks_and_scripts_available() -> None:
    langs = available_languages()
    assert len(langs) >= 15
    scripts = {language_script(lang) for lang in langs}
    assert len(scripts) >= 6, scripts
    assert set(available_tasks()) >= {"retrieval", "qa", "bitext", "paraphrase", "classification", "clustering"}
    assert SynthConfig(languages=3).languages == langs[:3]
    assert SynthConfig(tasks=2, languages="en,de").tasks == available_tasks()[:2]


def test_every_phrasing_of_every_language_renders_with_all_slots(all_languages_run) -> None:
    cfg, _, _ = all_languages_run
    ctx = build_context(cfg)
    rng = random.Random(0)
    for split in SPLITS:
        pool = ctx.pools.splits[split]
        for kind in kinds.available_kinds(pool, list(KINDS)):
            values = kinds.sample(kind, pool, rng)
            for lang in cfg.languages:
                for section in SECTIONS:
                    for i, text in enumerate(ctx.templates[lang][kind][section]):
                        out = localizer(lang).fill(text, values)
                        assert out.strip() and "{" not in out and "}" not in out, (lang, kind, section, i, out)


def test_all_rows_valid_filled_and_cover_every_task_language(all_languages_run) -> None:
    cfg, out, manifest = all_languages_run
    ids = set()
    for split in SPLITS:
        rows = _rows(out, split)
        assert pq.read_schema(out / f"{split}.parquet").equals(PAIR_SCHEMA)
        for row in rows:
            assert row_problems(row) == [], row
            assert row["source"] == "rtrain-synth"
            for text in _texts(row):
                assert text.strip() and "{" not in text and "}" not in text, row
            ids.add(row["id"])
        seen = {(r["task"], r["query_lang"]) for r in rows}
        assert seen == {(t, lang) for t in cfg.tasks for lang in cfg.languages}
    assert len(ids) == manifest["splits"]["train"]["rows"] + manifest["splits"]["heldout"]["rows"]


def test_counts_match_manifest_and_knobs(all_languages_run) -> None:
    cfg, out, manifest = all_languages_run
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["seed"] == cfg.seed and manifest["generator_version"]
    assert manifest["config"] == cfg.model_dump(mode="json")
    per_shard = {"train": cfg.examples_per_task_language, "heldout": cfg.heldout_examples_per_task_language}
    for split in SPLITS:
        info, rows = manifest["splits"][split], _rows(out, split)
        assert info["rows"] == len(rows) == len(cfg.tasks) * len(cfg.languages) * per_shard[split]
        assert info["by_task"] == {t: len(cfg.languages) * per_shard[split] for t in sorted(cfg.tasks)}
        assert info["by_query_lang"] == {lang: len(cfg.tasks) * per_shard[split] for lang in sorted(cfg.languages)}
        assert set(info["by_task_language"].values()) == {per_shard[split]}
        assert info["by_source"] == {"rtrain-synth": len(rows)}
        assert info["cross_lingual_rows"] == sum(r["query_lang"] != r["doc_lang"] for r in rows)


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    cfg = SynthConfig(languages=["en", "ru", "ja"], examples_per_task_language=15, heldout_examples_per_task_language=5)
    first, second = generate(cfg, tmp_path / "a"), generate(cfg, tmp_path / "b")
    for name in FILES + ("manifest.json",):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first == second
    generate(cfg.model_copy(update={"seed": 1}), tmp_path / "c")
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name
    # another process with another str-hash seed writes the same bytes
    code = (
        "import sys; from rtrain.synth import SynthConfig, generate; "
        f"generate(SynthConfig.model_validate_json({cfg.model_dump_json()!r}), sys.argv[1])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], check=True, env=env, timeout=120)
    for name in FILES + ("manifest.json",):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "d" / name).read_bytes(), name


@pytest.mark.parametrize("k", [0, 2, 5])
def test_negatives_number_k_and_differ_from_positive(tmp_path: Path, k: int) -> None:
    cfg = SynthConfig(languages=["en", "de", "ar"], examples_per_task_language=20, negatives_per_row=k, seed=k)
    generate(cfg, tmp_path)
    for split in SPLITS:
        for row in _rows(tmp_path, split):
            assert len(row["negatives"]) == k, row
            assert row["positive"] not in row["negatives"], row
            assert len(set(row["negatives"])) == k, row


def test_cross_lingual_rate_is_respected(tmp_path: Path) -> None:
    tasks = sorted(CROSS_LINGUAL_TASKS)
    cfg = SynthConfig(languages=["en", "de", "zh", "hi"], tasks=tasks, examples_per_task_language=150,
                      heldout_examples_per_task_language=0, cross_lingual_rate=0.4, seed=2)  # fmt: skip
    generate(cfg, tmp_path)
    rows = _rows(tmp_path, "train")
    share = sum(r["query_lang"] != r["doc_lang"] for r in rows) / len(rows)
    assert abs(share - 0.4) < 0.05, share
    assert {r["doc_lang"] for r in rows} == set(cfg.languages)

    zero = cfg.model_copy(update={"cross_lingual_rate": 0.0, "tasks": available_tasks()})
    generate(zero, tmp_path / "zero")
    rows = _rows(tmp_path / "zero") + _rows(tmp_path / "zero", "heldout")
    assert all(r["query_lang"] == r["doc_lang"] for r in rows if r["task"] != "bitext")
    assert all(r["query_lang"] != r["doc_lang"] for r in rows if r["task"] == "bitext")


def test_heldout_entities_never_appear_in_train() -> None:
    cfg = SynthConfig(languages=["en", "fr", "ko"], heldout_fraction=0.25, seed=5)
    ctx = build_context(cfg)
    train, heldout = ctx.pools.splits["train"], ctx.pools.splits["heldout"]
    assert not set(train.territories) & set(heldout.territories)
    assert not set(train.all_currencies) & set(heldout.all_currencies)
    assert not set(train.cities) & set(heldout.cities)
    assert not set(train.languages) & set(heldout.languages)
    tags = {split: set() for split in SPLITS}
    for split in SPLITS:
        for task in cfg.tasks:
            for lang in cfg.languages:
                build_shard(ctx, split, task, lang, 40, tags[split])
    assert not tags["train"] & tags["heldout"], sorted(tags["train"] & tags["heldout"])[:10]
    kinds_seen = {tag.split(":")[0] for tag in tags["heldout"]}
    assert kinds_seen >= {"territory", "currency", "city", "language", "date", "time", "amount", "temperature"}


def test_unknown_names_list_what_exists() -> None:
    with pytest.raises(ValueError, match=r"unknown language.*'xx'.*available.*'en'.*'ja'"):
        SynthConfig(languages=["en", "xx"])
    with pytest.raises(ValueError, match=r"unknown task.*'ranking'.*available.*'retrieval'"):
        SynthConfig(tasks=["retrieval", "ranking"])
    with pytest.raises(ValueError, match=r"1\.\.21|first 99"):
        SynthConfig(languages=99)
    with pytest.raises(ValueError, match="bitext"):
        SynthConfig(languages=["en"], tasks=["bitext"])
    with pytest.raises(ValueError, match="unknown key; allowed here: .*languages"):
        SynthConfig(langs=["en"])


def _broken_templates(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir(parents=True)
    for lang in ("en", "de"):
        shutil.copy(TEMPLATE_DIR / f"{lang}.yaml", folder / f"{lang}.yaml")
    text = (folder / "de.yaml").read_text(encoding="utf-8")
    assert old in text
    (folder / "de.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def test_template_missing_slot_names_file_key_and_slot(tmp_path: Path) -> None:
    folder = _broken_templates(tmp_path, "{territory} – Landeswährung: {currency}.", "Währung: {currency}.")
    with pytest.raises(TemplateError) as err:
        load_language("de", folder)
    message = str(err.value)
    assert str(folder / "de.yaml") in message and "kinds.currency.passages[1]" in message and "{territory}" in message
    with pytest.raises(TemplateError, match=r"kinds\.currency\.passages\[1\].*\{territory\}"):
        cfg = SynthConfig(languages=["en", "de"], examples_per_task_language=1)
        generate(cfg, tmp_path / "out", template_dir=folder)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_template_question_leaking_answer_or_unknown_slot_is_rejected(tmp_path: Path) -> None:
    leak = _broken_templates(tmp_path / "a", "Womit bezahlt man im Land {territory}?", "{territory}: {currency}?")
    with pytest.raises(TemplateError, match=r"de\.yaml.*kinds\.currency\.questions\[1\].*\{currency\}"):
        load_language("de", leak)
    typo = _broken_templates(tmp_path / "b", "Die Währung dort ist {currency}.", "Die Währung dort ist {curency}.")
    with pytest.raises(TemplateError, match=r"kinds\.currency\.answers\[1\].*\{currency\}"):
        load_language("de", typo)


def test_interrupted_run_leaves_no_finished_looking_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen_module = importlib.import_module("rtrain.synth.generate")  # the module; rtrain.synth.generate is the function
    cfg = SynthConfig(languages=["en", "de"], examples_per_task_language=3, heldout_examples_per_task_language=1)
    generate(cfg, tmp_path)
    assert (tmp_path / "manifest.json").exists()
    real = gen_module._write_parquet

    def fail_on_heldout(table, path):
        if path.name == "heldout.parquet":
            raise KeyboardInterrupt("stopped half-way")
        return real(table, path)

    monkeypatch.setattr(gen_module, "_write_parquet", fail_on_heldout)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg.model_copy(update={"seed": 9}), tmp_path)
    assert not (tmp_path / "manifest.json").exists()
    monkeypatch.undo()
    generate(cfg, tmp_path)
    assert (tmp_path / "manifest.json").exists() and not list(tmp_path.glob(".*tmp*"))


def test_cli_generates_and_reports_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    (tmp_path / "synth.yaml").write_text("synth:\n  languages: [en, es]\n  seed: 4\n", encoding="utf-8")
    args = parser.parse_args(["--out", str(tmp_path / "out"), "--config", str(tmp_path / "synth.yaml"),
                              "examples_per_task_language=4", "tasks=[retrieval,qa]"])  # fmt: skip
    assert command.run(args) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["languages"] == ["en", "es"] and manifest["seed"] == 4
    assert manifest["splits"]["train"]["rows"] == 2 * 2 * 4
    assert "retrieval" in capsys.readouterr().out
    assert main(["synth", "--out", str(tmp_path / "bad"), "languages=[en,klingon]"]) == 2
    assert capsys.readouterr().err.startswith("rtrain synth: error: synth config: languages = ['en', 'klingon']")
    assert not (tmp_path / "bad").exists()


def test_ray_data_path_equals_in_process_path(tmp_path: Path, ray_local) -> None:
    cfg = SynthConfig(
        languages=["en", "de", "th"], examples_per_task_language=12, heldout_examples_per_task_language=4, seed=3
    )
    on_ray = generate(cfg, tmp_path / "ray", ray_threshold=0)
    local = generate(cfg, tmp_path / "local")
    assert (on_ray["engine"], local["engine"]) == ("ray", "local")
    for name in FILES:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert on_ray["splits"] == local["splits"]


def test_synth_out_naming_a_file_is_refused_and_the_file_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["synth", "--out", str(target)]) == 2
    assert "is a file; name a folder" in capsys.readouterr().err and target.read_text() == "mine"
