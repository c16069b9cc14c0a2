"""Hard-negative mining: hand-checked selection, filters, languages, cache reuse, faiss indexes,
Ray Data embedding, the CLI, the pipeline stage and bad inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rtrain.cli import main
from rtrain.config import ConfigError, resolve
from rtrain.data.files import PairDataError, validate_pair_files
from rtrain.mining import MineConfig, MiningError, mine
from rtrain.mining.search import ArraySource, build_index, index_kind, search_batches

from tiny import TrigramEncoder, pair_rows, write_jsonl

DIM = 16
# Cosine of each document with the query "qa" (the query is e0; document j is s * e0 + sqrt(1 - s^2) * e_j).
SCORES = {
    "pa": 0.80,
    "d1": 0.95,
    "d2": 0.79,
    "d3": 0.77,
    "d4": 0.75,
    "d5": 0.70,
    "d6": 0.65,
    "d7": 0.60,
    "d8": 0.55,
    "pb": 0.70,
}


class FixedEncoder:
    """Texts -> fixed unit vectors (the same for both kinds); counts the texts it encodes."""

    def __init__(self) -> None:
        self.vectors = {"qa": np.eye(DIM, dtype=np.float32)[0]}
        for j, (text, s) in enumerate(SCORES.items(), start=1):
            v = np.zeros(DIM, dtype=np.float32)
            v[0], v[j] = s, math.sqrt(1 - s * s)
            self.vectors[text] = v
        self.encoded = 0

    def encode(self, texts: list[str], kind: str, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.encoded += len(texts)
        return np.stack([self.vectors[t] for t in texts])  # (n, DIM)


def _row(i: int, query: str, positive: str, lang: str = "en") -> dict:
    return {
        "id": f"r{i}",
        "query": query,
        "positive": positive,
        "negatives": ["old"],
        "task": "retrieval",
        "query_lang": lang,
        "doc_lang": lang,
        "source": "t",
    }


def _hand_case(tmp_path: Path) -> tuple[Path, Path]:
    """One row (qa -> pa) and a corpus with every d*, a duplicate of d5, the positive and the query's own text."""
    pairs = write_jsonl([_row(0, "qa", "pa")], tmp_path / "in" / "pairs.jsonl")
    texts = ["d1", "d2", "d3", "d4", "d5", "d5", "d6", "d7", "d8", "pa", "qa"]
    corpus = write_jsonl([{"text": t} for t in texts], tmp_path / "corpus.jsonl")
    return pairs, corpus


def _mine_one(tmp_path: Path, name: str, **settings: object) -> tuple[dict, dict]:
    pairs, corpus = _hand_case(tmp_path)
    cfg = MineConfig(
        model="fixed", corpus=[str(corpus)], cache_dir=str(tmp_path / "cache"), show_progress=False, **settings
    )
    manifest = mine([str(pairs)], cfg, tmp_path / name, encoder=FixedEncoder(), encoder_key="fixed")
    (row,) = pq.read_table(tmp_path / name / "pairs.parquet").to_pylist()
    return row, manifest


@pytest.mark.parametrize(
    ("settings", "negatives", "removed"),
    [
        # 0.95 * 0.80 = 0.76: d1, d2, d3 are likely false negatives; survivors d4..d8; skip 1 -> d5, d6.
        (dict(relative_margin=0.05), ["d5", "d6"], {"relative_margin": 3}),
        # score + 0.12 > 0.80 drops everything above 0.68 (d1..d5); survivors d6, d7, d8; skip 1 -> d7, d8.
        (dict(relative_margin=None, absolute_margin=0.12), ["d7", "d8"], {"absolute_margin": 5}),
        # above 0.72: d1..d4; survivors d5..d8; skip 1 -> d6, d7.
        (dict(relative_margin=None, max_score=0.72), ["d6", "d7"], {"max_score": 4}),
        # both: relative drops d1..d3, min_score 0.62 drops d7, d8; survivors d4, d5, d6; skip 1 -> d5, d6.
        (dict(min_score=0.62), ["d5", "d6"], {"relative_margin": 3, "min_score": 2}),
        # no filter: survivors d1..d8 (positive, query text and duplicate gone); skip 1 -> d2, d3.
        (dict(relative_margin=None), ["d2", "d3"], {}),
    ],
)
def test_exact_index_selects_the_top_of_the_window_after_filters(
    tmp_path: Path, settings: dict, negatives: list[str], removed: dict
) -> None:
    row, manifest = _mine_one(tmp_path, "out", num_negatives=2, range_min=1, range_max=10, **settings)
    assert row["negatives"] == negatives  # "old" negatives are replaced
    assert row["neg_scores"] == pytest.approx([SCORES[t] for t in negatives], abs=1e-6)
    assert row["pos_score"] == pytest.approx(0.80, abs=1e-6)
    assert manifest["pool"] == 10  # 8 d*, pa, qa: the duplicate d5 and the corpus copy of pa are merged
    assert manifest["indexes"][0]["kind"] == "flat"
    expected = {
        "candidates": 10,
        "positive": 1,
        "query_text": 1,
        "absolute_margin": 0,
        "relative_margin": 0,
        "max_score": 0,
        "min_score": 0,
        **removed,
    }
    assert manifest["removed"] == expected
    assert manifest["rows_short"] == 0 and manifest["negatives"] == 2


def test_window_depth_and_short_rows_follow_sentence_transformers(tmp_path: Path) -> None:
    # Only range_max + positives + 1 candidates are searched (qa, d1, pa, d2, d3, d4 for range_max=4):
    # the margin leaves d4 alone at rank 0, below range_min=1, so the row is short and reported.
    row, manifest = _mine_one(tmp_path, "out", num_negatives=2, range_min=1, range_max=4)
    assert row["negatives"] == [] and row["neg_scores"] == []
    assert manifest["rows_short"] == 1 and manifest["rows_without_negatives"] == 1
    assert manifest["removed"]["candidates"] == 6
    # range_max unset with a filter: range_min + 10 * num_negatives + max_positives, like sentence-transformers.
    _, derived = _mine_one(tmp_path, "out2", num_negatives=2, range_min=1)
    assert derived["window"] == {"range_min": 1, "range_max": 22}


def test_random_sampling_draws_from_the_window_in_score_order(tmp_path: Path) -> None:
    row, _ = _mine_one(tmp_path, "out", num_negatives=2, range_min=1, range_max=10, sampling_strategy="random", seed=3)
    window = ["d5", "d6", "d7", "d8"]  # relative margin drops d1..d3, range_min skips d4
    assert len(row["negatives"]) == 2 and set(row["negatives"]) <= set(window)
    assert row["neg_scores"] == sorted(row["neg_scores"], reverse=True)


def test_every_positive_of_a_query_is_excluded_and_the_lowest_sets_the_margin(tmp_path: Path) -> None:
    rows = [_row(0, "qa", "pa"), _row(1, "qa", "pb")]
    pairs = write_jsonl(rows, tmp_path / "pairs.jsonl")
    corpus = write_jsonl([{"text": t} for t in ("d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8")], tmp_path / "c.jsonl")
    cfg = MineConfig(
        model="fixed", corpus=[str(corpus)], num_negatives=2, range_max=12, cache=False, show_progress=False
    )
    manifest = mine([str(pairs)], cfg, tmp_path / "out", encoder=FixedEncoder(), encoder_key="fixed")
    out = pq.read_table(tmp_path / "out" / "pairs.parquet").to_pylist()
    # lowest positive 0.70 -> threshold 0.665: d1..d5 dropped (d5 = 0.70 too); pa and pb are positives, never negatives.
    assert [r["negatives"] for r in out] == [["d6", "d7"], ["d6", "d7"]]
    assert [r["pos_score"] for r in out] == pytest.approx([0.80, 0.70], abs=1e-6)
    assert manifest["removed"]["positive"] == 2 and manifest["removed"]["relative_margin"] == 5
    assert manifest["max_positives_per_query"] == 2 and manifest["unique_queries"] == 1


def _bilingual(tmp_path: Path) -> Path:
    en = pair_rows(40, negatives=0, seed=1, lang="en")
    de = [
        {**r, "id": f"de-{i}", "positive": r["positive"] + " ja", "query": r["query"] + " bitte"}
        for i, r in enumerate(pair_rows(40, negatives=0, seed=2, lang="de"))
    ]
    return write_jsonl(en + de, tmp_path / "pairs.jsonl")


@pytest.mark.parametrize("same_language", ["query", "positive"])
def test_same_language_keeps_negatives_in_the_rows_language(tmp_path: Path, same_language: str) -> None:
    pairs = _bilingual(tmp_path)
    lang_of = {r["positive"]: r["doc_lang"] for r in map(json.loads, pairs.read_text().splitlines())}
    results = {}
    for setting in ("none", same_language):
        cfg = MineConfig(
            model="tri",
            same_language=setting,
            num_negatives=3,
            range_max=30,
            relative_margin=None,
            cache_dir=str(tmp_path / "cache"),
            show_progress=False,
        )
        manifest = mine([str(pairs)], cfg, tmp_path / setting, encoder=TrigramEncoder(), encoder_key="tri")
        results[setting] = pq.read_table(tmp_path / setting / "pairs.parquet").to_pylist()
        assert manifest["rows_short"] == 0
    crossed = sum(lang_of[n] != r["query_lang"] for r in results["none"] for n in r["negatives"])
    assert crossed > 0  # without the restriction, trigram neighbours cross languages
    key = "query_lang" if same_language == "query" else "doc_lang"
    assert all(lang_of[n] == r[key] for r in results[same_language] for n in r["negatives"])


def test_cache_is_reused_and_only_new_texts_are_encoded(tmp_path: Path) -> None:
    pairs = write_jsonl(pair_rows(60, negatives=0, seed=4), tmp_path / "a" / "pairs.jsonl")
    cfg = MineConfig(
        model="tri", num_negatives=2, cache_dir=str(tmp_path / "cache"), show_progress=False, shard_size=25
    )
    first_enc, second_enc = TrigramEncoder(), TrigramEncoder()
    first = mine([str(pairs)], cfg, tmp_path / "o1", encoder=first_enc, encoder_key="tri")
    second = mine([str(pairs)], cfg, tmp_path / "o2", encoder=second_enc, encoder_key="tri")
    assert sum(n for _, n in first_enc.calls) == first["pool"] + first["unique_queries"]
    assert second_enc.calls == [] and second["cache"]["encoded"] == {"document": 0, "query": 0}
    assert len(list((tmp_path / "cache" / "tri" / "document").glob("*.npy"))) >= 2  # shard_size splits shards
    same = [pq.read_table(tmp_path / o / "pairs.parquet").column("negatives").to_pylist() for o in ("o1", "o2")]
    assert same[0] == same[1]
    grown = write_jsonl(
        pair_rows(60, negatives=0, seed=4) + [_row(99, "a brand new query", "a brand new doc")],
        tmp_path / "b" / "pairs.jsonl",
    )
    third_enc = TrigramEncoder()
    mine([str(grown)], cfg, tmp_path / "o3", encoder=third_enc, encoder_key="tri")
    assert sorted(third_enc.calls) == [("document", 1), ("query", 1)]
    other_key = TrigramEncoder()
    mine([str(pairs)], cfg, tmp_path / "o4", encoder=other_key, encoder_key="tri-v2")  # another model: no reuse
    assert sum(n for _, n in other_key.calls) == first["pool"] + first["unique_queries"]


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, dim))
    x = centers[rng.integers(0, 40, size=n)] + 0.35 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # (n, dim)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_recall_the_exact_neighbours(kind: str) -> None:
    pool, queries = _clustered(4000, 32, 0), _clustered(300, 32, 1)
    k = 20
    results = {}
    for which in ("flat", kind):
        cfg = MineConfig(model="x", index=which, faiss_batch_size=128, show_progress=False)
        index, info = build_index(ArraySource(pool), cfg, k, len(queries))
        assert info.kind == which and index.ntotal == len(pool)
        results[which] = np.concatenate([ids for _, _, ids in search_batches(index, ArraySource(queries), k, cfg)])
    exact = results["flat"]
    assert exact.shape == (300, k)
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(exact.tolist(), results[kind].tolist())])
    assert recall >= 0.9, f"{kind} recall@{k} vs flat = {recall:.3f}"
    auto = MineConfig(model="x")
    assert index_kind(50_000, 10**6, auto) == "flat" and index_kind(50_001, 10**6, auto) == "ivf"
    assert index_kind(10**6, 4000, auto) == "flat" and index_kind(10**6, 4001, auto) == "ivf"  # 4 sqrt(pool)


def test_ray_data_embedding_matches_in_process(tmp_path: Path, tiny_model: Path, ray_local) -> None:
    import shutil

    pairs = write_jsonl(pair_rows(50, negatives=0, seed=6), tmp_path / "pairs.jsonl")
    out, shards = {}, {}
    for engine in ("local", "ray"):
        cfg = MineConfig(
            model=str(tiny_model),
            engine=engine,
            ray_workers=2,
            ray_cpus_per_worker=0.5,
            num_negatives=2,
            cache_dir=str(tmp_path / engine),
            show_progress=False,
        )
        if engine == "ray":  # queries come from the cache: one Ray Data job (documents) keeps the test short
            (local_key,) = (tmp_path / "local").iterdir()
            shutil.copytree(local_key / "query", tmp_path / "ray" / local_key.name / "query")
        manifest = mine([str(pairs)], cfg, tmp_path / f"out-{engine}")
        assert manifest["engine"].startswith(engine) and manifest["cache"]["encoded"]["document"] == manifest["pool"]
        out[engine] = pq.read_table(tmp_path / f"out-{engine}" / "pairs.parquet").to_pylist()
        (key_dir,) = (tmp_path / engine).iterdir()
        (shard,) = (key_dir / "document").glob("*.npy")
        shards[engine] = np.load(shard)
    assert manifest["cache"]["encoded"]["query"] == 0
    np.testing.assert_allclose(shards["ray"], shards["local"], atol=1e-5)
    assert [r["pos_score"] for r in out["ray"]] == pytest.approx([r["pos_score"] for r in out["local"]], abs=1e-5)


def test_cli_end_to_end_then_warm_cache(tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    pairs = write_jsonl(pair_rows(80, negatives=1, seed=7), tmp_path / "pairs.jsonl")
    args = [
        "mine",
        str(pairs),
        "--model",
        str(tiny_model),
        "num_negatives=2",
        "range_min=2",
        "range_max=40",
        "relative_margin=0.01",
        f"cache_dir={tmp_path / 'cache'}",
        "show_progress=false",
    ]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    assert "rows / unique queries / pool" in capsys.readouterr().out
    files, stats = validate_pair_files([str(tmp_path / "out")], negatives_per_query=0)  # manifest.json is skipped
    assert [f.name for f in files] == ["pairs.parquet"]
    rows = pq.read_table(files[0]).to_pylist()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert stats.rows == 80 == manifest["rows"]
    assert manifest["settings"]["range_min"] == 2 and manifest["cache"]["encoded"]["document"] == manifest["pool"]
    assert sum(len(r["negatives"]) < 2 for r in rows) == manifest["rows_short"]
    for r in rows:
        assert r["positive"] not in r["negatives"] and len(set(r["negatives"])) == len(r["negatives"])
        assert len(r["neg_scores"]) == len(r["negatives"]) and r["neg_scores"] == sorted(r["neg_scores"], reverse=True)
        assert all(s <= r["pos_score"] - abs(r["pos_score"]) * 0.01 + 1e-6 for s in r["neg_scores"])
    assert main([*args, "--out", str(tmp_path / "out")]) == 0  # rerun into its own folder: replaced, cache warm
    again = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert again["cache"]["encoded"] == {"document": 0, "query": 0} and again["engine"] is None
    assert pq.read_table(tmp_path / "out" / "pairs.parquet").to_pylist() == rows


def test_pipeline_mine_stage_runs_then_skips(tmp_path: Path, tiny_model: Path) -> None:
    from rtrain.pipeline import PipelineConfig, run_pipeline

    data = {
        "name": "mine-test",
        "workdir": str(tmp_path / "w"),
        "stages": {
            "synth": {
                "config": {
                    "languages": ["en"],
                    "tasks": ["retrieval"],
                    "examples_per_task_language": 30,
                    "heldout_examples_per_task_language": 0,
                    "negatives_per_row": 0,
                }
            },
            "mine": {
                "config": {
                    "model": str(tiny_model),
                    "num_negatives": 2,
                    "show_progress": False,
                    "cache_dir": str(tmp_path / "cache"),
                }
            },
        },
    }
    cfg = resolve(PipelineConfig, data)
    first = run_pipeline(cfg)
    assert first["mine"]["manifest"]["rows"] == 30
    mined = tmp_path / "w" / "mined" / "train.parquet"
    _, stats = validate_pair_files([str(mined)], negatives_per_query=0)
    assert stats.rows == 30 and pq.read_table(mined).column("pos_score").null_count == 0
    assert run_pipeline(cfg)["mine"] == "skipped"
    with pytest.raises(ConfigError, match="num_negatives"):
        resolve(
            PipelineConfig, {**data, "stages": {"mine": {"config": {"model": "m", "num_negatives": 5, "range_max": 3}}}}
        )


def test_bad_inputs_fail_with_the_file_key_and_fix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pairs, corpus = _hand_case(tmp_path)
    enc = {"encoder": FixedEncoder(), "encoder_key": "fixed"}
    base = {"model": "fixed", "cache_dir": str(tmp_path / "cache"), "show_progress": False}
    with pytest.raises(MiningError, match="do not exist"):
        mine([str(tmp_path / "missing.jsonl")], MineConfig(**base), tmp_path / "o", **enc)
    no_text = write_jsonl([{"body": "x"}], tmp_path / "bad_corpus.jsonl")
    with pytest.raises(MiningError, match=r"no column 'text'.*set corpus_column"):
        mine([str(pairs)], MineConfig(**base, corpus=[str(no_text)]), tmp_path / "o", **enc)
    txt = tmp_path / "c.txt"
    txt.write_text("d1\nd2\n")
    with pytest.raises(MiningError, match="same_language=query.*no language"):
        mine([str(pairs)], MineConfig(**base, corpus=[str(txt)], same_language="query"), tmp_path / "o", **enc)
    no_positive = tmp_path / "nopos.parquet"
    pq.write_table(pa.table({"id": ["a"], "query": ["q"]}), no_positive)
    with pytest.raises(PairDataError, match=r"missing column\(s\).*positive"):
        mine([str(no_positive)], MineConfig(**base), tmp_path / "o", **enc)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(MiningError, match="did not write"):
        mine([str(pairs)], MineConfig(**base), foreign, **enc)
    with pytest.raises(ConfigError, match=r"num_negatives=5 does not fit the rank window"):
        resolve(MineConfig, {"model": "m"}, ["num_negatives=5", "range_min=2", "range_max=6"])
    with pytest.raises(ConfigError, match="relative_margn = 0.1: unknown key"):
        resolve(MineConfig, {"model": "m"}, ["relative_margn=0.1"])
    assert main(["mine", str(tmp_path / "nope.jsonl"), "--model", "m", "--out", str(tmp_path / "o")]) == 2
    assert "do not exist" in capsys.readouterr().err
    assert main(["mine", str(pairs), "--out", str(tmp_path / "o")]) == 2
    assert "needs a model" in capsys.readouterr().err
    assert main(["mine", str(pairs), "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_mine_deletes_only_its_own_plain_names_and_only_once_the_new_rows_are_ready(tmp_path: Path) -> None:
    pairs, corpus = _hand_case(tmp_path)
    base = {"model": "fixed", "corpus": [str(corpus)], "cache_dir": str(tmp_path / "cache"), "show_progress": False}
    out = tmp_path / "out"
    mine([str(pairs)], MineConfig(**base), out, encoder=FixedEncoder(), encoder_key="fixed")
    first = (out / "pairs.parquet").read_bytes()

    class Broken(FixedEncoder):
        def encode(self, *args: object, **kwargs: object) -> np.ndarray:
            raise RuntimeError("the model failed to load")

    with pytest.raises(RuntimeError, match="failed to load"):  # a failing model leaves the earlier run whole
        mine([str(pairs)], MineConfig(**base, cache=False), out, encoder=Broken(), encoder_key="broken")
    assert (out / "pairs.parquet").read_bytes() == first and (out / "manifest.json").is_file()

    victim = tmp_path / "victim.txt"  # a manifest entry pointing outside --out never deletes there
    victim.write_text("keep me")
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "outputs": ["pairs.parquet", "../victim.txt"]}))
    with pytest.raises(MiningError, match=r"outputs entry '\.\./victim\.txt' is not a file name inside"):
        mine([str(pairs)], MineConfig(**base), out, encoder=FixedEncoder(), encoder_key="fixed")
    assert victim.read_text() == "keep me" and (out / "pairs.parquet").read_bytes() == first

    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    with pytest.raises(MiningError, match="is a file; name a folder"):
        mine([str(pairs)], MineConfig(**base), a_file, encoder=FixedEncoder(), encoder_key="fixed")
    assert a_file.read_text() == "not a folder"
