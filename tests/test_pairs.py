"""Corpus readers (`rtrain pairs`): each reader on the real corpora in ../shared/data, skip counts,
determinism, the eval-set guard, bad inputs with file:line errors, the CLI and the pipeline stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rtrain.cli import main
from rtrain.config import ConfigError
from rtrain.data.files import validate_pair_files
from rtrain.pairs import CorpusError, build_pairs, load_spec
from rtrain.pairs.spec import EVAL_FOLDERS

REPO = Path(__file__).resolve().parents[1]
SHARED = next((p for p in (Path("/work/shared/data"), REPO.parent / "shared" / "data") if p.is_dir()), None)
needs_shared = pytest.mark.skipif(SHARED is None, reason="shared corpora (<repo>/../shared/data) absent")


def build(tmp_path: Path, *sources: dict[str, Any], root: Path | None = None, out: str = "out") -> dict[str, Any]:
    """Build a spec of `sources` into tmp_path/out; returns the manifest."""
    spec = load_spec({"root": str(root or SHARED or tmp_path), "sources": list(sources)})
    return build_pairs(spec, tmp_path / out).manifest


def rows_of(tmp_path: Path, name: str, out: str = "out") -> list[dict[str, Any]]:
    path = tmp_path / out / f"{name}.parquet"
    validate_pair_files([str(path)], negatives_per_query=0)  # every written file is valid training data
    return pq.read_table(path).to_pylist()


def skipped(manifest: dict[str, Any], name: str) -> dict[str, int]:
    return {reason: v["count"] for reason, v in manifest["sources"][name]["skipped"].items()}


def tsv_texts(path: Path) -> dict[str, str]:
    return {f[1]: f[2] for f in (line.split("\t") for line in path.read_text().splitlines())}


# ---------------------------------------------------------------- readers on the real corpora


@needs_shared
def test_parallel_tsv_joined_on_id_pivot_both_directions(tmp_path: Path) -> None:
    langs = {lang: f"ud_pud/{lang}.pud.tsv" for lang in ("en", "de", "zh")}
    manifest = build(tmp_path, {"kind": "parallel", "name": "pud", "tsv": langs, "pivot": "en"})
    rows = rows_of(tmp_path, "pud")
    info = manifest["sources"]["pud"]
    assert set(info["by_language_pair"]) == {"en->de", "de->en", "en->zh", "zh->en"}
    assert info["candidates"] == 4000 and len(rows) == 4000 - sum(skipped(manifest, "pud").values())
    assert {r["task"] for r in rows} == {"bitext"} and {r["source"] for r in rows} == {"pud"}
    assert sorted(r["id"] for r in rows) == sorted(f"pud-{n}" for n in range(len(rows)))
    en, de = tsv_texts(SHARED / "ud_pud/en.pud.tsv"), tsv_texts(SHARED / "ud_pud/de.pud.tsv")
    by_pair = {(r["query_lang"], r["doc_lang"], r["query"]): r["positive"] for r in rows}
    for sent_id in ("n01001011", "w01049082", "w05010027"):  # joined on sent_id, in both directions
        assert by_pair[("en", "de", en[sent_id])] == de[sent_id]
        assert by_pair[("de", "en", de[sent_id])] == en[sent_id]
    assert len({r["query_lang"] for r in rows[:200]}) == 3  # written shuffled, not grouped by direction


@needs_shared
def test_parallel_line_aligned_explicit_pairs_and_all_pairs(tmp_path: Path) -> None:
    files = {
        "en": "ntrex128_subset/newstest2019-src.eng.txt",
        "de": "ntrex128_subset/newstest2019-ref.deu.txt",
        "sw": "ntrex128_subset/newstest2019-ref.swa.txt",
    }
    manifest = build(
        tmp_path,
        {"kind": "parallel", "name": "one_way", "files": files, "pairs": [["de", "sw"]], "both_directions": False},
        {"kind": "parallel", "name": "all", "files": files, "max_rows": 3000, "seed": 3},
    )
    one_way = rows_of(tmp_path, "one_way")
    assert manifest["sources"]["one_way"]["by_language_pair"] == {"de->sw": len(one_way)}
    de_lines = (SHARED / files["de"]).read_text(encoding="utf-8").splitlines()
    sw_lines = (SHARED / files["sw"]).read_text(encoding="utf-8").splitlines()
    for row in one_way[:50]:  # line i of one file pairs with line i of the other (CRLF stripped)
        assert sw_lines[de_lines.index(row["query"])].strip() == row["positive"]
        assert "\r" not in row["query"] + row["positive"]
    everything = manifest["sources"]["all"]
    assert len(everything["by_language_pair"]) == 6 and everything["rows"] == 3000
    assert everything["dropped_by_max_rows"] == everything["candidates"] - 3000 - sum(skipped(manifest, "all").values())


@needs_shared
def test_squad_skips_and_counts_unanswerable(tmp_path: Path) -> None:
    files = {"fa": "qa_native/fa.persianqa_test.json", "pt": "qa_native/pt.faquad_dataset.json"}
    manifest = build(
        tmp_path,
        {"kind": "squad", "name": "qa", "files": files},
        {"kind": "squad", "name": "qa_all", "files": {"fa": files["fa"]}, "skip_unanswerable": False},
        {
            "kind": "squad",
            "name": "ja",
            "files": {"ja": "qa_native/ja.jsquad_v1.3_valid.json"},
            "max_rows": 300,
            "context_replace": {" [SEP] ": "\n"},
        },
    )
    fa = json.loads((SHARED / files["fa"]).read_text())
    impossible = sum(q.get("is_impossible", False) for a in fa["data"] for p in a["paragraphs"] for q in p["qas"])
    assert impossible == 279  # the README's count
    counts = skipped(manifest, "qa")
    assert counts["unanswerable question (is_impossible or no answers)"] == 279
    rows = rows_of(tmp_path, "qa")
    assert len(rows) == 930 + 900 - sum(counts.values())
    assert manifest["sources"]["qa"]["by_language_pair"].keys() == {"fa->fa", "pt->pt"}
    assert {r["task"] for r in rows} == {"qa"}
    paragraphs = [p for a in fa["data"] for p in a["paragraphs"]]
    contexts = {p["context"].strip(): [q["question"].strip() for q in p["qas"]] for p in paragraphs}
    for row in rows:
        if row["query_lang"] == "fa":
            assert row["query"] in contexts[row["positive"]]  # the question's own paragraph
    assert manifest["sources"]["qa_all"]["rows"] > len([r for r in rows if r["query_lang"] == "fa"])
    ja = rows_of(tmp_path, "ja")
    assert len(ja) == 300 and not any("[SEP]" in r["positive"] for r in ja)


@needs_shared
def test_monolingual_ict_removes_the_sentence_from_its_context(tmp_path: Path) -> None:
    common = {
        "kind": "monolingual",
        "files": {"vi": "ud_mono/vi_vtb.tsv"},
        "mode": "ict",
        "document_column": 0,
        "window": 4,
    }
    manifest = build(
        tmp_path,
        {**common, "name": "removed", "ict_remove_prob": 1.0},
        {**common, "name": "kept", "ict_remove_prob": 0.0},
    )
    sentences = [line.split("\t")[2].strip() for line in (SHARED / "ud_mono/vi_vtb.tsv").read_text().splitlines()]
    removed = rows_of(tmp_path, "removed")
    assert len(removed) > 3000 and {r["task"] for r in removed} == {"self_supervised"}
    for row in removed:
        assert row["query"] in sentences
        if row["query"] in row["positive"]:  # only where the corpus repeats the sentence next to itself
            assert sentences.count(row["query"]) > 1, row
    kept = rows_of(tmp_path, "kept")
    assert all(row["query"] in row["positive"] for row in kept)  # left in place when not removed
    assert "sentence shorter than min_chars=10" in skipped(manifest, "removed")


def test_crops_come_from_one_document_and_documents_split_on_blank_lines(tmp_path: Path) -> None:
    lines = []
    for doc in range(6):
        lines += [f"D{doc} sentence number {s} of document {doc}." for s in range(7)] + [""]
    lines += ["short", "", "Lonely sentence with no neighbours at all.", ""]
    (tmp_path / "docs.txt").write_text("\n".join(lines), encoding="utf-8")
    manifest = build(
        tmp_path,
        {
            "kind": "monolingual",
            "name": "m",
            "files": {"en": "docs.txt"},
            "mode": "both",
            "window": 4,
            "crops_per_block": 3,
            "crop_ratio": [0.3, 0.8],
        },
        root=tmp_path,
    )
    rows = rows_of(tmp_path, "m")
    assert rows
    for row in rows:
        docs = {word for word in (row["query"] + " " + row["positive"]).split() if word.startswith("D")}
        assert len(docs) == 1  # query and positive never mix documents
    counts = skipped(manifest, "m")
    assert counts["sentence shorter than min_chars=10"] == 1
    assert counts["block of one sentence (no context to pair with)"] == 1


@needs_shared
def test_word_crops_are_spans_of_the_same_line(tmp_path: Path) -> None:
    src = {
        "kind": "monolingual",
        "name": "w",
        "mode": "crop",
        "crop_unit": "words",
        "crop_ratio": [0.3, 0.7],
        "files": {"es": "ud_mono/es_gsd.tsv", "zh": "ud_mono/zh_gsdsimp.tsv"},
        "max_rows": 800,
    }
    build(tmp_path, src)
    lines = {}
    for name in ("es_gsd", "zh_gsdsimp"):
        for line in (SHARED / f"ud_mono/{name}.tsv").read_text().splitlines():
            lines[line.split("\t")[2].strip()] = True
    rows = rows_of(tmp_path, "w")
    assert len(rows) == 800 and {r["query_lang"] for r in rows} == {"es", "zh"}
    for row in rows:
        assert row["query"] != row["positive"]
        assert any(row["query"] in text and row["positive"] in text for text in lines), row


# ---------------------------------------------------------------- existing pair files and HF datasets


def test_pair_files_with_a_column_mapping_and_blank_texts(tmp_path: Path) -> None:
    records = [
        {
            "question": "Wo liegt Lima?",
            "passage": "Lima liegt in Peru.",
            "hard": ["Quito liegt in Ecuador.", ""],
            "lang": "de",
        },
        {"question": "  ", "passage": "Empty question.", "hard": [], "lang": "de"},
        {"question": "Where is Lima?", "passage": "Lima is in Peru.", "hard": None, "lang": None},
    ]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    pq.write_table(
        pa.Table.from_pylist([{"q": "Capital of Peru?", "d": "Lima is the capital of Peru."}]), tmp_path / "b.parquet"
    )
    manifest = build(
        tmp_path,
        {
            "kind": "pairs",
            "name": "mapped",
            "files": ["a.jsonl"],
            "task": "qa",
            "lang": "en",
            "columns": {"query": "question", "positive": "passage", "negatives": "hard", "query_lang": "lang"},
        },
        {
            "kind": "pairs",
            "name": "pq",
            "files": ["b.parquet"],
            "lang": "es",
            "doc_lang": "en",
            "columns": {"query": "q", "positive": "d"},
        },
        root=tmp_path,
    )
    rows = sorted(rows_of(tmp_path, "mapped"), key=lambda r: r["query"])
    assert [(r["query"], r["query_lang"], r["doc_lang"], r["negatives"], r["task"]) for r in rows] == [
        ("Where is Lima?", "en", "en", [], "qa"),  # a null language column falls back to `lang`
        ("Wo liegt Lima?", "de", "en", ["Quito liegt in Ecuador."], "qa"),
    ]
    assert skipped(manifest, "mapped") == {
        "blank line": 1,
        "blank negative (dropped from its row)": 1,
        "blank query": 1,
    }
    (row,) = rows_of(tmp_path, "pq")
    assert (row["query_lang"], row["doc_lang"], row["task"]) == ("es", "en", "retrieval")


def test_hf_dataset_from_a_local_save(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    data = {
        "anchor": ["Was kostet ein Ticket?", "Wie alt ist Rom?", ""],
        "pos": ["Ein Ticket kostet 2 Euro.", "Rom ist fast 2800 Jahre alt.", "leer"],
    }
    datasets.Dataset.from_dict(data).save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict(data), "test": datasets.Dataset.from_dict(data)}
    ).save_to_disk(str(tmp_path / "dict"))
    cols = {"query": "anchor", "positive": "pos"}
    manifest = build(
        tmp_path,
        {"kind": "hf_dataset", "name": "hf", "path": "single", "lang": "de", "columns": cols},
        {"kind": "hf_dataset", "name": "hf2", "path": "dict", "split": "test", "lang": "de", "columns": cols},
        root=tmp_path,
    )
    assert sorted(r["query"] for r in rows_of(tmp_path, "hf")) == ["Was kostet ein Ticket?", "Wie alt ist Rom?"]
    assert skipped(manifest, "hf") == {"blank query": 1} and manifest["sources"]["hf2"]["rows"] == 2
    with pytest.raises(CorpusError, match=r"holds splits \['train', 'test'\]; set split"):
        build(
            tmp_path,
            {"kind": "hf_dataset", "name": "x", "path": "dict", "lang": "de", "columns": cols},
            root=tmp_path,
            out="o2",
        )
    with pytest.raises(CorpusError, match=r"missing column\(s\) 'text' \(for query\); available: \['anchor', 'pos'\]"):
        build(
            tmp_path,
            {
                "kind": "hf_dataset",
                "name": "x",
                "path": "single",
                "lang": "de",
                "columns": {"query": "text", "positive": "pos"},
            },
            root=tmp_path,
            out="o3",
        )


# ---------------------------------------------------------------- determinism, guard, bad inputs


@needs_shared
def test_same_spec_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    sources = [
        {
            "kind": "parallel",
            "name": "p",
            "tsv": {"en": "ud_pud/en.pud.tsv", "fr": "ud_pud/fr.pud.tsv"},
            "max_rows": 500,
        },
        {"kind": "monolingual", "name": "m", "files": {"ka": "ud_mono/ka_glc.tsv"}, "document_column": 0},
    ]
    build(tmp_path, *sources, out="a")
    build(tmp_path, *sources, out="b")
    build(tmp_path, *[{**s, "seed": 1} for s in sources], out="c")
    for name in ("p.parquet", "m.parquet", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "p.parquet").read_bytes() != (tmp_path / "c" / "p.parquet").read_bytes()


@needs_shared
def test_heldout_rows_share_no_text_with_training_rows_and_folders_skip_them(tmp_path: Path) -> None:
    # 4 languages, all directions: each sentence is in 6 directions, so most left-out pairs share a text
    tsv = {lang: f"ud_pud/{lang}.pud.tsv" for lang in ("en", "de", "fr", "ko")}
    source = {"kind": "parallel", "name": "p", "tsv": tsv, "pairs": "all", "both_directions": True, "max_rows": 1500}
    build(tmp_path, source, out="plain")
    manifest = build(tmp_path, {**source, "heldout_rows": 50}, out="held")["sources"]["p"]
    train, held = rows_of(tmp_path, "p", out="held"), rows_of(tmp_path, "p", out="held/_heldout")
    assert len(held) == manifest["heldout"]["rows"] == 50 and len(train) == manifest["rows"] == 1500
    assert not {t for r in held for t in (r["query"], r["positive"])} & {
        t for r in train for t in (r["query"], r["positive"])
    }
    assert manifest["heldout"]["dropped_for_shared_text"] > 0
    # the training rows do not depend on the held-out set
    assert (tmp_path / "held" / "p.parquet").read_bytes() == (tmp_path / "plain" / "p.parquet").read_bytes()
    # folder listings (training, mining) skip the _heldout folder
    from rtrain.data.files import list_pair_files

    assert list_pair_files([str(tmp_path / "held")]) == [tmp_path / "held" / "p.parquet"]
    rebuilt = build(tmp_path, source, out="held")  # a rebuild without heldout_rows removes the old file
    assert rebuilt["sources"]["p"].get("heldout") is None and not (tmp_path / "held/_heldout/p.parquet").exists()
    with pytest.raises(CorpusError, match="no candidate is left for it.*lower max_rows"):
        build(tmp_path, {**source, "max_rows": None, "heldout_rows": 5}, out="none")


def test_eval_sets_are_refused(tmp_path: Path) -> None:
    flores = {"en": "sib200_flores_subset/eng_Latn/dev.tsv", "de": "sib200_flores_subset/deu_Latn/dev.tsv"}
    with pytest.raises(ConfigError) as err:
        load_spec(
            {
                "sources": [
                    {"kind": "squad", "name": "q", "files": {"en": "mlqa_r_dev/mlqa-r-dev.en.json"}},
                    {"kind": "parallel", "name": "f", "tsv": flores},
                ]
            }
        )
    msg = str(err.value)
    assert "2 problem(s)" in msg and "sources.0.squad.files" in msg and "sources.1.parallel.tsv" in msg
    assert "evaluation set folder 'mlqa_r_dev'" in msg and "never train on it" in msg
    # a root inside an eval set is caught when the paths are resolved, before anything is read
    inside = tmp_path / EVAL_FOLDERS[2]
    inside.mkdir()
    (inside / "a.txt").write_text("x\n")
    with pytest.raises(CorpusError, match="evaluation set folder 'stsb_multi_mt'"):
        build(tmp_path, {"kind": "parallel", "name": "s", "files": {"en": "a.txt", "de": "a.txt"}}, root=inside)


def test_bad_spec_names_every_key_and_what_is_allowed() -> None:
    with pytest.raises(ConfigError) as err:
        load_spec(
            {
                "sources": [
                    {"kind": "parallel", "name": "x", "files": {"en": "a", "de": "b"}, "pivto": "en"},
                    {"kind": "corpus", "name": "y"},
                    {"kind": "monolingual", "name": "x", "files": {"en": "a"}, "window": 1},
                ]
            }
        )
    msg = str(err.value)
    assert "sources.0.parallel.pivto = 'en': unknown key; allowed here:" in msg and "pivot" in msg
    assert "sources.1" in msg and "a source needs kind: one of parallel, squad, monolingual, pairs, hf_dataset" in msg
    assert "sources.2.monolingual.window = 1" in msg
    with pytest.raises(ConfigError, match=r"source names \['x'\] appear twice"):
        load_spec({"sources": [{"kind": "squad", "name": "x", "files": {"en": "a"}}] * 2})


def test_bad_inputs_raise_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"query": "a", "positive": "b"}\n\n{"query": "c", positive: 1}\n')
    (tmp_path / "cols.jsonl").write_text('{"query": "a", "positive": "b"}\n{"question": "c", "positive": "d"}\n')
    (tmp_path / "en.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "de.txt").write_text("eins\nzwei\n")
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "squad.json").write_text('{"data": [\n {"paragraphs": [\n  {"context": "x", "qas": [}\n]}]}')
    (tmp_path / "nosquad.json").write_text('{"data": [{"title": "t"}]}')
    pairs = {"kind": "pairs", "name": "p", "lang": "en"}
    cases = [
        ({**pairs, "files": ["bad.jsonl"]}, r"bad\.jsonl:3: not valid JSON \(Expecting property name"),
        (
            {**pairs, "files": ["cols.jsonl"]},
            r"cols\.jsonl:2: missing column\(s\) 'query' \(for query\); available: \['positive', 'question'\]",
        ),
        (
            {"kind": "parallel", "name": "u", "files": {"en": "en.txt", "de": "de.txt"}},
            r"not line-aligned, their line counts differ: en=3 \(.*en\.txt\), de=2 \(.*de\.txt\)",
        ),
        (
            {"kind": "parallel", "name": "e", "files": {"en": "empty.txt", "de": "empty.txt"}},
            r"empty\.txt: holds no text \(2 line\(s\), all blank\)",
        ),
        ({"kind": "squad", "name": "s", "files": {"en": "squad.json"}}, r"squad\.json:3: not valid JSON"),
        (
            {"kind": "squad", "name": "s", "files": {"en": "nosquad.json"}},
            r"data\[0\] has no key 'paragraphs' \(it has \['title'\]\)",
        ),
        ({**pairs, "files": ["missing.jsonl"]}, r"missing\.jsonl: no such file .* set root"),
    ]
    for source, pattern in cases:
        with pytest.raises(CorpusError, match=pattern):
            build(tmp_path, source, root=tmp_path)


def test_blank_and_short_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "en.tsv").write_text("s\t1\tHello there.\ns\t2\t\ns\t3\nbroken line\ns\t4\tGood night.\n")
    (tmp_path / "de.tsv").write_text("s\t1\tHallo.\ns\t2\tLeer auf Englisch.\ns\t4\tGute Nacht.\ns\t4\tNochmal.\n")
    manifest = build(
        tmp_path,
        {"kind": "parallel", "name": "t", "tsv": {"en": "en.tsv", "de": "de.tsv"}, "both_directions": False},
        root=tmp_path,
    )
    assert [(r["query"], r["positive"]) for r in sorted(rows_of(tmp_path, "t"), key=lambda r: r["query"])] == [
        ("Good night.", "Gute Nacht."),
        ("Hello there.", "Hallo."),
    ]
    counts = skipped(manifest, "t")
    assert counts["blank sentence"] == 1 and counts["too few columns (need 3)"] == 2
    assert counts["id missing from the en file"] == 1
    assert any(reason.startswith("duplicate id") for reason in counts)


# ---------------------------------------------------------------- CLI and pipeline


@needs_shared
def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"root: {SHARED}\nsources:\n"
        "  - {kind: squad, name: he, files: {he: qa_native/he.heq_v1.1_val.json}, max_rows: 200}\n"
        "  - {kind: parallel, name: pud, tsv: {en: ud_pud/en.pud.tsv, th: ud_pud/th.pud.tsv}}\n"
    )
    assert main(["pairs", str(spec), "--out", str(tmp_path / "out"), "sources.1.max_rows=100"]) == 0
    out = capsys.readouterr().out
    assert "rtrain pairs" in out and "unanswerable question" in out and "300 rows" in out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {n: s["rows"] for n, s in manifest["sources"].items()} == {"he": 200, "pud": 100}
    assert manifest["sources"]["he"]["inputs"][0]["bytes"] == (SHARED / "qa_native/he.heq_v1.1_val.json").stat().st_size
    validate_pair_files([str(tmp_path / "out" / "he.parquet"), str(tmp_path / "out" / "pud.parquet")], 0)
    assert main(["pairs", "--out", str(tmp_path / "out"), str(spec), "sources.0.kind=bogus"]) == 2
    assert "a source needs kind" in capsys.readouterr().err


@needs_shared
def test_pipeline_stage_runs_then_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rtrain.config import resolve
    from rtrain.pipeline import PipelineConfig, run_pipeline

    monkeypatch.setenv("RTRAIN_SHARED_DATA", str(SHARED))  # the default root when the stage has none
    pipeline = {
        "name": "pairs-only",
        "workdir": str(tmp_path / "w"),
        "stages": {
            "pairs": {
                "sources": [
                    {"kind": "monolingual", "name": "yo", "files": {"yo": "ud_mono/yo_ytb.tsv"}, "document_column": 0}
                ]
            }
        },
    }
    cfg = resolve(PipelineConfig, pipeline)
    first = run_pipeline(cfg)
    assert first["pairs"]["manifest"]["sources"]["yo"]["rows"] > 100
    assert (tmp_path / "w" / "pairs" / "yo.parquet").is_file()
    assert run_pipeline(cfg) == {"pairs": "skipped"}
    changed = resolve(PipelineConfig, pipeline, ["stages.pairs.sources.0.seed=5"])
    assert run_pipeline(changed)["pairs"] != "skipped"
    with pytest.raises(ConfigError, match=r"stages.pairs.sources.0.monolingual.typo = 1: unknown key"):
        resolve(PipelineConfig, pipeline, ["stages.pairs.sources.0.typo=1"])


def test_pipeline_stage_takes_a_spec_file_with_overrides(tmp_path: Path) -> None:
    from rtrain.config import resolve
    from rtrain.pipeline import PipelineConfig

    repo = Path(__file__).resolve().parents[1]
    spec = str(repo / "jobs" / "pairs" / "shared-corpora.yaml")
    stage = {"spec": spec, "overrides": ["sources.0.max_rows=100"]}
    cfg = resolve(PipelineConfig, {"name": "p", "workdir": str(tmp_path), "stages": {"pairs": stage}})
    resolved = cfg.stages.pairs.resolved()
    assert resolved.sources[0].name == "ud_pud" and resolved.sources[0].max_rows == 100
    assert cfg.stages.pairs.inputs[0] == spec  # the spec file itself is an input: editing it reruns the stage
    with pytest.raises(ConfigError, match="either `spec`"):
        resolve(PipelineConfig, {"name": "p", "workdir": str(tmp_path), "stages": {"pairs": {}}})
    with pytest.raises(ConfigError, match="sources.0.typo"):
        resolve(
            PipelineConfig,
            {
                "name": "p",
                "workdir": str(tmp_path),
                "stages": {"pairs": {"spec": spec, "overrides": ["sources.0.typo=1"]}},
            },
        )


def test_a_failing_source_leaves_the_earlier_build_whole_and_no_orphan(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"query": f"q{i}", "positive": f"p{i}"}) + "\n" for i in range(4)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "positive": "p"}\n{not json\n')
    first = {"kind": "pairs", "name": "first", "lang": "en", "files": ["good.jsonl"]}
    build(tmp_path, first, root=tmp_path)
    out = tmp_path / "out"
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    second = {"kind": "pairs", "name": "second", "lang": "en", "files": ["bad.jsonl"]}
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2"):
        build(tmp_path, {**first, "max_rows": 2}, second, root=tmp_path)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in out.iterdir()) == ["first.parquet", "manifest.json"]  # no staging folder left

    (tmp_path / "a_file").write_text("x")
    with pytest.raises(CorpusError, match="is a file; name a folder"):
        build(tmp_path, first, root=tmp_path, out="a_file")


def test_a_symlink_inside_a_folder_into_an_eval_set_is_refused(tmp_path: Path) -> None:
    eval_dir = tmp_path / "mlqa_r_dev"  # an eval-role folder name of ../shared/data
    eval_dir.mkdir()
    (eval_dir / "rows.jsonl").write_text(json.dumps({"query": "q", "positive": "p"}) + "\n")
    train = tmp_path / "train"
    train.mkdir()
    (train / "ok.jsonl").write_text(json.dumps({"query": "a", "positive": "b"}) + "\n")
    (train / "sneaky.jsonl").symlink_to(eval_dir / "rows.jsonl")
    source = {"kind": "pairs", "name": "p", "lang": "en", "files": ["train"]}
    with pytest.raises(CorpusError, match=r"mlqa_r_dev/rows\.jsonl lies inside the evaluation set folder 'mlqa_r_dev'"):
        build(tmp_path, source, root=tmp_path)
    assert not (tmp_path / "out" / "p.parquet").exists()
