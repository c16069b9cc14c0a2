"""Slow end-to-end runs (`pytest -m slow`): every ZeRO stage, and the real pretrained MiniLM."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from sentence_transformers import SentenceTransformer

from rtrain.checkpoint import LOG_FILE, load_trainer_state
from rtrain.config import resolve_job
from rtrain.synth import SynthConfig, generate
from rtrain.train.trainer import train

from tiny import job_dict

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("stage", [0, 1, 3])
def test_every_zero_stage_trains_checkpoints_and_exports(
    stage: int, tiny_model: Path, tiny_pairs: Path, tmp_path: Path, ray_local
) -> None:
    cfg = resolve_job(
        job_dict(
            tiny_model,
            tiny_pairs,
            tmp_path,
            deepspeed={"zero_stage": stage},
            train={"max_steps": 6, "checkpoint_every_steps": 3, "log_every_steps": 3},
        )
    )
    outcome = train(cfg)
    assert load_trainer_state(outcome.checkpoint)["step"] == 6
    model = SentenceTransformer(str(outcome.model_dir), device="cpu")
    assert model.encode(["red car"]).shape == (1, 64)


def test_pretrained_minilm_retrofits_on_synthetic_pairs(tmp_path: Path, ray_local) -> None:
    generate(
        SynthConfig(
            languages=["en", "de", "fr"],
            tasks=["retrieval", "bitext", "paraphrase"],
            examples_per_task_language=60,
            heldout_examples_per_task_language=5,
            negatives_per_row=1,
        ),
        tmp_path / "synth",
    )
    cfg = resolve_job(
        Path(__file__).resolve().parents[1] / "jobs" / "minilm_lora.yaml",
        [
            f"data.train_files=[{tmp_path / 'synth' / 'train.parquet'}]",
            f"output.storage_path={tmp_path}",
            "output.name=minilm",
            "train.batch_size_per_worker=16",
            "train.log_every_steps=1",
            "train.epochs=2",
            "model.passage_max_length=48",
            "logging.wandb=false",
        ],
    )
    outcome = train(cfg)
    log = [json.loads(line) for line in (outcome.run_dir / LOG_FILE).read_text().splitlines()]
    # the same rows in both epochs, so the mean loss per epoch compares like with like (one batch's loss
    # swings with its mix of tasks more than 16 steps of training move it)
    by_epoch = [[r["loss"] for r in log if r["epoch"] == e] for e in (0, 1)]
    assert len(by_epoch[0]) == len(by_epoch[1]) == 16, log
    assert statistics.mean(by_epoch[1]) < statistics.mean(by_epoch[0]) - 0.05, by_epoch
    model = SentenceTransformer(str(outcome.model_dir), device="cpu")
    q, d = model.encode(["How much is a bus ticket?", "A bus ticket costs 2 euros."], prompt_name="query")
    assert q.shape == (384,)
