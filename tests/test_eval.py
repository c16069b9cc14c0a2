"""Tests for rtrain.eval: metrics by hand, agreement with mteb, readers, evaluators, reports.

CPU only, no model downloads, no network (sockets to the outside are blocked for every test).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # let `pytest tests/test_eval.py` work without installing the package
    sys.path.insert(0, str(REPO))

from rtrain.eval import BitextMiningEvaluator, RetrievalEvaluator, format_table  # noqa: E402
from rtrain.eval.metrics import (  # noqa: E402
    bitext_metrics,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    nearest_neighbours,
    precision_at_k,
    rank_documents,
    recall_at_k,
    retrieval_metrics,
)
from rtrain.eval.readers import (  # noqa: E402
    read_beir,
    read_flores,
    read_flores_file,
    read_parallel_files,
    read_parallel_tsv,
)
from rtrain.eval.report import bar_chart  # noqa: E402
from rtrain.eval.retrieval import build_index, search_index  # noqa: E402

from tiny import TrigramEncoder  # noqa: E402

FLORES_DIR = Path("/work/shared/data/sib200_flores_subset")


# ---------------------------------------------------------------------------------------------
# fixtures and fakes
# ---------------------------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("no_network")


class TableEncoder:
    """Fake encoder returning precomputed vectors looked up by text."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def encode(self, texts: list[str], kind: str, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# retrieval metrics by hand
# ---------------------------------------------------------------------------------------------

QREL = {"d1": 3, "d2": 2, "d3": 0, "d4": 1}  # relevant (grade >= 1): d1, d2, d4
RANKED = ["d3", "d1", "d5", "d4", "d2"]  # d5 is unjudged


def test_ndcg_by_hand() -> None:
    # DCG@3  = 0/log2(2) + 3/log2(3) + 0/log2(4)             = 1.8927893
    # IDCG@3 = 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.2618595 + 0.5 = 4.7618595
    # nDCG@3 = 1.8927893 / 4.7618595                          = 0.3974895
    assert ndcg_at_k(RANKED, QREL, 3) == pytest.approx(0.3974895, abs=1e-6)
    # DCG@5 = 1.8927893 + 1/log2(5) + 2/log2(6) = 1.8927893 + 0.4306766 + 0.7737056 = 3.0971714
    # IDCG@5 = IDCG@3 (only three positive grades)  ->  3.0971714 / 4.7618595 = 0.6504122
    assert ndcg_at_k(RANKED, QREL, 5) == pytest.approx(0.6504122, abs=1e-6)
    # first doc irrelevant -> 0; ideal top-1 = 3
    assert ndcg_at_k(RANKED, QREL, 1) == 0.0
    assert ndcg_at_k(["d1", "d2", "d4"], QREL, 10) == pytest.approx(1.0)
    # negative grades count as 0 gain (as in trec_eval)
    assert ndcg_at_k(["x", "a"], {"x": -1, "a": 1}, 2) == pytest.approx(1 / math.log2(3))


def test_mrr_recall_precision_map_by_hand() -> None:
    # first relevant doc (d1) is at rank 2
    assert mrr_at_k(RANKED, QREL, 1) == 0.0
    assert mrr_at_k(RANKED, QREL, 3) == pytest.approx(1 / 2)
    # recall: relevant {d1, d2, d4}; top-3 holds d1 -> 1/3; top-5 holds all three -> 3/3
    assert recall_at_k(RANKED, QREL, 3) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, QREL, 5) == pytest.approx(1.0)
    # precision divides by k even past the end of the list: 3 relevant / 10
    assert precision_at_k(RANKED, QREL, 3) == pytest.approx(1 / 3)
    assert precision_at_k(RANKED, QREL, 5) == pytest.approx(3 / 5)
    assert precision_at_k(RANKED, QREL, 10) == pytest.approx(3 / 10)
    # AP@5: hits at ranks 2, 4, 5 -> precisions 1/2, 2/4, 3/5; (0.5 + 0.5 + 0.6) / 3 relevant = 0.5333333
    assert map_at_k(RANKED, QREL, 5) == pytest.approx(1.6 / 3)
    # AP@3: only the hit at rank 2 -> 0.5 / 3 relevant (not / 1 retrieved) = 0.1666667
    assert map_at_k(RANKED, QREL, 3) == pytest.approx(0.5 / 3)
    # a query without any relevant doc scores 0, not NaN
    assert recall_at_k(RANKED, {"d3": 0}, 5) == 0.0 and map_at_k(RANKED, {}, 5) == 0.0


def test_tie_break_follows_trec_eval() -> None:
    # equal scores: doc id descending decides (b before a)
    assert rank_documents({"a": 0.5, "b": 0.5, "c": 0.9}) == ["c", "b", "a"]
    # mean over queries: q1 perfect at rank 1, q2 relevant at rank 2 -> MRR@10 = (1 + 0.5) / 2 = 0.75
    run = {"q1": {"a": 0.9, "b": 0.1}, "q2": {"a": 0.9, "b": 0.1}}
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    assert retrieval_metrics(run, qrels, (1, 10))["mrr_at_10"] == pytest.approx(0.75)


def test_bad_k_raises() -> None:
    with pytest.raises(ValueError, match="k=0"):
        ndcg_at_k(RANKED, QREL, 0)


# ---------------------------------------------------------------------------------------------
# bitext metrics by hand
# ---------------------------------------------------------------------------------------------


def test_bitext_metrics_by_hand() -> None:
    # gold 0..3, predicted [0, 0, 2, 2]: sources 0 and 2 right, targets 0 and 2 each chosen twice
    # per gold label (support 1 each):  label 0: p = 1/2, r = 1, f1 = 2*1/(1+2) = 2/3
    #                                   label 1: never predicted -> p = r = f1 = 0
    #                                   label 2: p = 1/2, r = 1, f1 = 2/3;  label 3: all 0
    # weighted mean (weights 1/4): precision = 1/4, recall = 2/4, f1 = (4/3)/4 = 1/3; accuracy = 2/4
    m = bitext_metrics([0, 0, 2, 2], [0, 1, 2, 3])
    assert m == pytest.approx({"precision": 0.25, "recall": 0.5, "f1": 1 / 3, "accuracy": 0.5})


def test_bitext_metrics_match_sklearn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    rng = np.random.default_rng(1)
    gold = np.arange(50)
    pred = np.where(rng.random(50) < 0.6, gold, rng.integers(0, 50, 50))
    ours = bitext_metrics(pred, gold)
    assert ours["accuracy"] == pytest.approx(accuracy_score(gold, pred))
    for name, fn in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        assert ours[name] == pytest.approx(fn(gold, pred, average="weighted", zero_division=0), abs=1e-12)


def test_nearest_neighbours_chunks_agree() -> None:
    rng = np.random.default_rng(2)
    a, b = _unit(rng.normal(size=(37, 8))), _unit(rng.normal(size=(23, 8)))
    full_idx, full_score = nearest_neighbours(a, b, chunk_size=1000)
    small_idx, small_score = nearest_neighbours(a, b, chunk_size=5)
    np.testing.assert_array_equal(full_idx, (a @ b.T).argmax(axis=1))
    np.testing.assert_array_equal(full_idx, small_idx)
    np.testing.assert_allclose(full_score, small_score)


# ---------------------------------------------------------------------------------------------
# agreement with mteb's own implementations
# ---------------------------------------------------------------------------------------------


def _random_run(seed: int = 3) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    rng = np.random.default_rng(seed)
    docs = [f"doc{i:02d}" for i in range(60)]
    run, qrels = {}, {}
    for q in range(30):
        qid = f"q{q}"
        chosen = rng.choice(docs, size=40, replace=False)
        run[qid] = {d: float(np.round(rng.random(), 1)) for d in chosen}  # 1 decimal -> many ties
        judged = rng.choice(docs, size=8, replace=False)
        qrels[qid] = {d: int(rng.integers(0, 4)) for d in judged}
    qrels["q0"] = {d: 0 for d in qrels["q0"]}  # a query with no relevant doc
    return run, qrels


def _mteb_scores(run: dict, qrels: dict, k_values: list[int]) -> dict[str, float]:
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores, make_score_dict

    res = calculate_retrieval_scores(run, qrels, k_values)
    return make_score_dict(
        ndcg=res.ndcg,
        _map=res.map,
        recall=res.recall,
        precision=res.precision,
        mrr=res.mrr,
        naucs={},
        naucs_mrr={},
        hit_rate=res.hit_rate,
        task_scores={},
    )


def test_retrieval_metrics_agree_with_mteb() -> None:
    run, qrels = _random_run()
    k_values = [1, 3, 5, 10, 100]
    ours = retrieval_metrics(run, qrels, k_values)
    theirs = _mteb_scores(run, qrels, k_values)
    compared = 0
    for prefix in ("ndcg", "map", "recall", "precision", "mrr", "hit_rate"):
        for k in k_values:
            name = f"{prefix}_at_{k}"
            assert ours[name] == pytest.approx(theirs[name], abs=1e-4), name
            compared += 1
    assert compared == 30


def test_retrieval_evaluator_agrees_with_mteb_on_its_own_run() -> None:
    queries = {"q1": "Obama besuchte Berlin", "q2": "Le fleuve Amazone au Brésil", "q3": "Tokyo Olympische Spiele"}
    corpus = {
        "d1": "Obama visited Berlin",
        "d2": "The Amazon river in Brazil",
        "d3": "Tokyo Olympic Games",
        "d4": "Berlin wall history",
        "d5": "Brazil football",
    }
    qrels = {"q1": {"d1": 2, "d4": 1}, "q2": {"d2": 1}, "q3": {"d3": 1, "d5": 0}}
    ev = RetrievalEvaluator("tiny", queries, corpus, qrels, k_values=(1, 3, 10))
    run = ev.search(TrigramEncoder())
    ours = ev.score(run)["overall"]
    theirs = _mteb_scores(run, qrels, [1, 3, 10])
    for name in ("ndcg_at_10", "ndcg_at_3", "mrr_at_10", "recall_at_1", "recall_at_3", "map_at_10", "precision_at_3"):
        assert ours[name] == pytest.approx(theirs[name], abs=1e-4), name


def test_bitext_agrees_with_mteb_evaluator() -> None:
    """mteb's BitextMiningEvaluator + _compute_metrics on precomputed embeddings vs ours."""
    from datasets import Dataset
    from mteb._evaluators import BitextMiningEvaluator as MtebBitext
    from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining
    from mteb.timing import TimingStack

    rng = np.random.default_rng(4)
    a = _unit(rng.normal(size=(40, 16)))
    b = _unit(a + 1.2 * rng.normal(size=(40, 16)))  # noisy translations: some errors
    src, tgt = [f"s{i}" for i in range(40)], [f"t{i}" for i in range(40)]
    table = {**dict(zip(src, a, strict=True)), **dict(zip(tgt, b, strict=True))}

    class MtebModel:  # the two methods mteb's evaluator calls
        def encode(self, inputs, **kwargs):  # noqa: ANN001, ANN003, ANN201
            return np.stack([table[t] for batch in inputs for t in batch["text"]])

        def similarity(self, x, y):  # noqa: ANN001, ANN201
            return np.asarray(x) @ np.asarray(y).T

    mteb_ev = MtebBitext(
        Dataset.from_dict({"sentence1": src, "sentence2": tgt}),
        task_metadata=None,
        hf_split="test",
        hf_subset="default",
        pair_columns=[("sentence1", "sentence2")],
        timer=TimingStack(),
    )
    neighbours = mteb_ev(MtebModel(), encode_kwargs={"batch_size": 16})["sentence1-sentence2"]
    theirs = AbsTaskBitextMining._compute_metrics(None, neighbours, list(zip(range(40), range(40), strict=True)))  # type: ignore[arg-type]

    ours = BitextMiningEvaluator("x", {"s-t": (src, tgt)}, both_directions=False)(TableEncoder(table))
    got = ours["per_direction"]["s->t"]
    assert 0.0 < theirs["accuracy"] < 1.0  # a non-trivial case
    for name in ("precision", "recall", "f1", "accuracy"):
        assert got[name] == pytest.approx(theirs[name], abs=1e-4), name


def test_mteb_primary_metric_for_bitext_is_f1() -> None:
    import mteb

    assert mteb.get_task("FloresBitextMining").metadata.main_score == BitextMiningEvaluator.primary_metric == "f1"


# ---------------------------------------------------------------------------------------------
# evaluators with the fake encoder
# ---------------------------------------------------------------------------------------------

CORPUS_EN = {
    "en1": "Barack Obama visited Berlin in 2013.",
    "en2": "The Amazon river flows through Brazil and Peru.",
    "en3": "Tokyo hosted the Olympic Games in 2021.",
    "en4": "Mozart composed symphonies in Salzburg and Vienna.",
    "en5": "The Sahara desert covers much of Algeria.",
}
QUERIES_X = {
    "de1": "Obama besuchte Berlin 2013.",
    "de2": "Mozart komponierte Sinfonien in Salzburg und Wien.",
    "fr1": "L'Amazone traverse le Brésil et le Pérou.",
    "fr2": "Tokyo a accueilli les Jeux olympiques en 2021.",
    "fr3": "Le Sahara couvre une grande partie de l'Algérie.",
}
QRELS_X = {"de1": {"en1": 1}, "de2": {"en4": 1}, "fr1": {"en2": 1}, "fr2": {"en3": 1}, "fr3": {"en5": 1}}
LANGS_X = {"de1": "deu", "de2": "deu", "fr1": "fra", "fr2": "fra", "fr3": "fra"}


def test_cross_lingual_retrieval_with_fake_encoder() -> None:
    enc = TrigramEncoder()
    ev = RetrievalEvaluator("xling", QUERIES_X, CORPUS_EN, QRELS_X, languages=LANGS_X)
    assert ev.primary_metric == "ndcg_at_10" and ev.greater_is_better
    out = ev(enc)
    assert set(out) == {"overall", "per_language"} and set(out["per_language"]) == {"deu", "fra"}
    for name in ("ndcg_at_10", "mrr_at_10", "recall_at_1", "recall_at_10", "recall_at_100", "map_at_100"):
        assert name in out["overall"]
    # names and numbers are shared between languages, so trigrams find every translation first
    assert out["overall"]["recall_at_1"] == 1.0 and out["overall"]["main_score"] == 1.0
    assert ("document", 5) in enc.calls and ("query", 5) in enc.calls
    # per-language means recombine to the overall mean (2 deu + 3 fra queries)
    per = out["per_language"]
    assert (2 * per["deu"]["mrr_at_10"] + 3 * per["fra"]["mrr_at_10"]) / 5 == pytest.approx(out["overall"]["mrr_at_10"])


def test_retrieval_without_languages_and_skipped_queries() -> None:
    queries = {**QUERIES_X, "extra": "a query with no qrels"}
    out = RetrievalEvaluator("x", queries, CORPUS_EN, QRELS_X)(TrigramEncoder())
    assert out["per_language"] == {} and 0.0 <= out["overall"]["ndcg_at_10"] <= 1.0


def test_ivf_matches_flat_top1() -> None:
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(16, 32)) * 3
    docs = _unit(centers[rng.integers(0, 16, 2000)] + rng.normal(size=(2000, 32)))  # (2000, 32)
    queries = _unit(docs[rng.choice(2000, 100, replace=False)] + 0.05 * rng.normal(size=(100, 32)))
    ids = [f"d{i}" for i in range(2000)]
    flat = build_index(docs)
    exhaustive = build_index(docs, ivf_threshold=1000, ivf_nlist=16, ivf_nprobe=16)  # probes every list
    partial = build_index(docs, ivf_threshold=1000, ivf_nlist=16, ivf_nprobe=4)  # near-duplicate queries
    assert type(flat).__name__ == "IndexFlatIP" and type(exhaustive).__name__ == "IndexIVFFlat"
    top1 = [max(r, key=r.get) for r in search_index(flat, queries, ids, 5, query_batch_size=7)]
    for index in (exhaustive, partial):
        assert [max(r, key=r.get) for r in search_index(index, queries, ids, 5, query_batch_size=7)] == top1

    # and end to end through the evaluator
    texts = {f"text {i}": v for i, v in enumerate(docs)} | {f"query {i}": v for i, v in enumerate(queries)}
    corpus = {ids[i]: f"text {i}" for i in range(2000)}
    qtexts = {f"q{i}": f"query {i}" for i in range(100)}
    qrels = {f"q{i}": {top1[i]: 1} for i in range(100)}
    out = RetrievalEvaluator("ivf", qtexts, corpus, qrels, ivf_threshold=1000, ivf_nlist=16, ivf_nprobe=16)(
        TableEncoder(texts)
    )
    assert out["overall"]["recall_at_1"] == 1.0


def test_bitext_evaluator_both_directions() -> None:
    src = ["Obama besuchte Berlin 2013.", "Mozart komponierte in Salzburg.", "Tokyo 2021 Olympia."]
    tgt = ["Obama visited Berlin in 2013.", "Mozart composed in Salzburg.", "Tokyo 2021 Olympics."]
    out = BitextMiningEvaluator("b", {("deu", "eng"): (src, tgt)})(TrigramEncoder())
    assert set(out["per_direction"]) == {"deu->eng", "eng->deu"}
    assert out["per_language"]["deu-eng"]["accuracy"] == 1.0
    assert out["overall"]["main_score"] == out["overall"]["f1"] == 1.0


# ---------------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------------


def test_bad_retrieval_inputs_raise_clearly() -> None:
    with pytest.raises(ValueError, match=r"2 query id\(s\) missing from the queries.*'nope1'"):
        RetrievalEvaluator("t", QUERIES_X, CORPUS_EN, {**QRELS_X, "nope1": {"en1": 1}, "nope2": {"en1": 1}})
    with pytest.raises(ValueError, match=r"1 doc id\(s\) missing from the corpus.*'ghost'"):
        RetrievalEvaluator("t", QUERIES_X, CORPUS_EN, {"de1": {"ghost": 1}})
    with pytest.raises(ValueError, match="corpus is empty"):
        RetrievalEvaluator("t", QUERIES_X, {}, QRELS_X)
    with pytest.raises(ValueError, match="must include 10"):
        RetrievalEvaluator("t", QUERIES_X, CORPUS_EN, QRELS_X, k_values=(1, 5))
    with pytest.raises(ValueError, match="grades must be integers"):
        RetrievalEvaluator("t", QUERIES_X, CORPUS_EN, {"de1": {"en1": "high"}})
    with pytest.raises(ValueError, match="have no language"):
        RetrievalEvaluator("t", QUERIES_X, CORPUS_EN, QRELS_X, languages={"de1": "deu"})


def test_broken_encoder_output_raises() -> None:
    class Wrong:
        def encode(self, texts, kind, batch_size=64, show_progress=False):  # noqa: ANN001, ANN201
            return np.ones((len(texts) + 1, 4), dtype=np.float32)

    with pytest.raises(ValueError, match="one row per text"):
        RetrievalEvaluator("t", QUERIES_X, CORPUS_EN, QRELS_X)(Wrong())


def test_unequal_parallel_lists_raise() -> None:
    with pytest.raises(ValueError, match=r"'deu-eng' has 2 source but 1 target"):
        BitextMiningEvaluator("b", {"deu-eng": (["a", "b"], ["c"])})


def test_parallel_file_readers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a.txt").write_text("eins\nzwei\n\ndrei\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("one\ntwo\nEMPTY-ON-LEFT\nthree\n", encoding="utf-8")
    (tmp_path / "short.txt").write_text("one\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        src, tgt = read_parallel_files(tmp_path / "a.txt", tmp_path / "b.txt")
    assert (src, tgt) == (["eins", "zwei", "drei"], ["one", "two", "three"])
    assert "skipped 1 of 4 rows" in caplog.text and "line 3" in caplog.text
    with pytest.raises(ValueError, match=r"has 4 lines but .*short.txt has 1"):
        read_parallel_files(tmp_path / "a.txt", tmp_path / "short.txt")
    (tmp_path / "p.tsv").write_text('src\ttgt\n"Hallo" sagte er\t"Hello" he said\nkaputt\n', encoding="utf-8")
    src, tgt = read_parallel_tsv(tmp_path / "p.tsv", header=True)
    assert src == ['"Hallo" sagte er'] and tgt == ['"Hello" he said']  # quotes kept: quoting off
    with pytest.raises(ValueError, match="strict=True"):
        read_parallel_tsv(tmp_path / "p.tsv", header=True, strict=True)


def _write_beir(folder: Path, qrels_lines: list[str], corpus: list[dict] | None = None) -> None:
    (folder / "qrels").mkdir(parents=True)
    docs = (
        corpus
        if corpus is not None
        else [
            {"_id": "d1", "title": "Berlin", "text": "Capital of Germany."},
            {"_id": "d2", "text": "Paris is in France."},
        ]
    )
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs) + "{broken\n", encoding="utf-8")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "German capital?"}) + "\n", encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(
        "\n".join(["query-id\tcorpus-id\tscore", *qrels_lines]) + "\n", encoding="utf-8"
    )


def test_beir_reader(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_beir(tmp_path / "ok", ["q1\td1\t1", "q1\td2\t0"])
    with caplog.at_level(logging.WARNING):
        data = read_beir(tmp_path / "ok")
    assert data.corpus["d1"] == "Berlin Capital of Germany." and data.qrels == {"q1": {"d1": 1, "d2": 0}}
    assert data.skipped["corpus.jsonl"] == 1 and "invalid JSON" in caplog.text
    out = RetrievalEvaluator.from_beir(tmp_path / "ok")(TrigramEncoder())
    assert 0.0 <= out["overall"]["ndcg_at_10"] <= 1.0

    _write_beir(tmp_path / "bad", ["q1\td1\t1", "q9\td1\t1", "q1\tdX\t1", "q1\tdY\t1"])
    with pytest.raises(ValueError, match=r"names 1 query id\(s\) not in queries.jsonl: \['q9'\]"):
        read_beir(tmp_path / "bad")
    _write_beir(tmp_path / "empty", ["q1\td1\t1"], corpus=[])
    with pytest.raises(ValueError, match="corpus is empty"):
        read_beir(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing_folder"):
        read_beir(tmp_path / "missing_folder")


def test_beir_reader_unknown_docs(tmp_path: Path) -> None:
    _write_beir(tmp_path / "bad", ["q1\td1\t1", "q1\tdX\t1", "q1\tdY\t1"])
    with pytest.raises(ValueError, match=r"names 2 doc id\(s\) not in corpus.jsonl: \['dX', 'dY'\]"):
        read_beir(tmp_path / "bad")


# ---------------------------------------------------------------------------------------------
# pairs -> retrieval task
# ---------------------------------------------------------------------------------------------


def _pair(i: int, query: str, positive: str, negatives: list[str], lang: str) -> dict:
    return {
        "id": f"r{i}",
        "query": query,
        "positive": positive,
        "negatives": negatives,
        "task": "retrieval",
        "query_lang": lang,
        "doc_lang": "en",
        "source": "test",
    }


def test_from_pairs_rows_and_parquet(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from rtrain.data.schema import rows_to_table

    rows = [
        _pair(0, "Obama besuchte Berlin 2013.", CORPUS_EN["en1"], [CORPUS_EN["en5"]], "de"),
        _pair(1, "Obama besuchte Berlin 2013.", "Obama spoke in Berlin.", [], "de"),  # same query, 2nd positive
        _pair(2, "L'Amazone traverse le Brésil.", CORPUS_EN["en2"], [CORPUS_EN["en1"]], "fr"),
    ]
    ev = RetrievalEvaluator.from_pairs(rows, name="p")
    assert len(ev.queries) == 2 and len(ev.corpus) == 4  # en1, en5, "Obama spoke...", en2 (de-duplicated)
    assert sorted(len(v) for v in ev.qrels.values()) == [1, 2] and set(ev.languages.values()) == {"de", "fr"}
    pq.write_table(rows_to_table(rows), tmp_path / "pairs.parquet")
    out = RetrievalEvaluator.from_pairs(tmp_path / "pairs.parquet")(TrigramEncoder())
    assert set(out["per_language"]) == {"de", "fr"}
    assert out["overall"]["recall_at_10"] == 1.0


def test_from_pairs_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothere.parquet"):
        RetrievalEvaluator.from_pairs(tmp_path / "nothere.parquet")
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="has no pair rows"):
        RetrievalEvaluator.from_pairs(tmp_path / "empty.jsonl")
    with pytest.raises(ValueError, match="has no pair rows"):
        RetrievalEvaluator.from_pairs([])
    bad = _pair(0, "q", "p", [], "de") | {"positive": ""}
    with pytest.raises(ValueError, match=r"1 of 1 rows break the pair schema.*'positive' is empty"):
        RetrievalEvaluator.from_pairs([bad])


# ---------------------------------------------------------------------------------------------
# FLORES reader on the real shared files
# ---------------------------------------------------------------------------------------------

needs_flores = pytest.mark.skipif(
    not FLORES_DIR.is_dir(), reason=f"FLORES subset not present at {FLORES_DIR} (CI provides it)"
)


@needs_flores
def test_flores_reader_real_files() -> None:
    pairs = read_flores(["deu_Latn", "zho_Hans"], root=FLORES_DIR, split="dev", limit=20)
    assert list(pairs) == ["deu_Latn-eng_Latn", "zho_Hans-eng_Latn"]
    deu, eng = pairs["deu_Latn-eng_Latn"]
    assert len(deu) == len(eng) == 20
    # first dev row of both files is index_id 548
    assert deu[0].startswith("Durch den Wechsel vom Viertelmeilen") and eng[0].startswith("With the change from")
    # alignment by index_id, checked against the raw files
    raw_de, raw_en = (read_flores_file(FLORES_DIR / c / "dev.tsv") for c in ("deu_Latn", "eng_Latn"))
    by_text = {v: k for k, v in raw_de.items()}
    assert all(raw_en[by_text[d]] == e for d, e in zip(deu, eng, strict=True))
    full = read_flores(["fra_Latn"], root=FLORES_DIR, split=["dev", "test"])["fra_Latn-eng_Latn"]
    assert len(full[0]) == len(full[1]) == 99 + 204
    assert any('"' in s for s in raw_en.values())  # quotes survive: quoting is off


@needs_flores
def test_flores_bitext_end_to_end() -> None:
    out = BitextMiningEvaluator.from_flores(["deu_Latn", "fra_Latn"], root=FLORES_DIR, limit=30)(TrigramEncoder())
    assert set(out["per_language"]) == {"deu_Latn-eng_Latn", "fra_Latn-eng_Latn"}
    assert 0.0 < out["overall"]["f1"] <= 1.0


def test_flores_errors_and_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        read_flores(["deu_Latn"], root=tmp_path / "no_such_dir")
    for code, rows in {
        "eng_Latn": ["1\tc\tOne", "2\tc\tTwo", "3\tc\tThree"],
        "deu_Latn": ["1\tc\tEins", "2\tc", "3\tc\tDrei", "4\tc\tVier"],
    }.items():
        (tmp_path / code).mkdir()
        (tmp_path / code / "dev.tsv").write_text(
            "index_id\tcategory\ttext\n" + "\n".join(rows) + "\n", encoding="utf-8"
        )
    with caplog.at_level(logging.WARNING):
        pairs = read_flores(["deu_Latn"], root=tmp_path)
    assert pairs == {"deu_Latn-eng_Latn": (["Eins", "Drei"], ["One", "Three"])}
    assert "skipped 1 of 4 rows" in caplog.text  # the 2-field line
    assert "skipped 2 of 4 rows" in caplog.text  # index 2 (no German) and 4 (no English)
    with pytest.raises(FileNotFoundError, match=r"\['xxx_Latn'\] not found"):
        read_flores(["xxx_Latn"], root=tmp_path)


# ---------------------------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------------------------


def test_format_table_and_bar_chart(tmp_path: Path) -> None:
    results = {
        "base": {
            "overall": {"main_score": 0.5},
            "per_language": {"deu": {"main_score": 0.4}, "fra": {"main_score": 0.6}},
        },
        "tuned": {"overall": {"main_score": 0.7}, "per_language": {"deu": {"main_score": 0.65}}},
    }
    table = format_table(results)
    lines = table.splitlines()
    assert lines[0] == "| language (main_score) | base | tuned | Δ tuned vs base |"
    assert "| deu | 0.4000 | 0.6500 | +0.2500 |" in lines
    assert "| fra | 0.6000 | n/a | n/a |" in lines
    assert lines[-1] == "| **overall** | 0.5000 | 0.7000 | +0.2000 |"
    path = bar_chart(results, "main_score", tmp_path / "plots" / "bars.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(KeyError, match="no metric 'ndcg_at_10'"):
        format_table(results, metric="ndcg_at_10")
