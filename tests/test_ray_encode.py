"""Encoding as a Ray Data job over 2 replicas gives the local encoder's embeddings, in input order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtrain.eval.encoders import load_encoder
from rtrain.eval.ray_encode import RayDataEncoder

from tiny import pair_rows


def test_ray_data_encoder_matches_local(tiny_model: Path, ray_local) -> None:
    texts = [r["positive"] for r in pair_rows(150, seed=3)] + ["a much longer text " * 5]
    local = load_encoder(str(tiny_model)).encode(texts, "document")
    ray_enc = RayDataEncoder(str(tiny_model), num_workers=2, cpus_per_worker=0.5)
    distributed = ray_enc.encode(texts, "document", batch_size=16)
    assert distributed.shape == local.shape
    np.testing.assert_allclose(distributed, local, atol=1e-5)
    with pytest.raises(ValueError, match="num_workers=0"):
        RayDataEncoder(str(tiny_model), num_workers=0)


def test_rtrain_eval_with_ray_workers_scores_like_local(tiny_model: Path, tmp_path: Path, ray_local) -> None:
    import json

    import yaml

    from rtrain.cli import main

    from tiny import write_jsonl

    pairs = write_jsonl(pair_rows(30, negatives=2, seed=5), tmp_path / "pairs.jsonl")
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "tasks": [{"kind": "retrieval_pairs", "path": str(pairs)}]}))
    scores = {}
    for name, extra in (("local", []), ("ray", ["--ray-workers", "2", "--ray-cpus-per-worker", "0.5"])):
        assert main(["eval", f"m={tiny_model}", "--suite", str(suite), "--out", str(tmp_path / name), *extra]) == 0
        (result,) = (tmp_path / name / "m").glob("*.json")
        scores[name] = json.loads(result.read_text())["scores"]
    local_main = [s["main_score"] for split in scores["local"].values() for s in split]
    ray_main = [s["main_score"] for split in scores["ray"].values() for s in split]
    assert ray_main == pytest.approx(local_main, abs=1e-6)
