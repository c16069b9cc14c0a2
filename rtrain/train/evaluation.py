"""Evaluation during training: run an eval suite on rank 0 against the live encoder."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from rtrain.checkpoint import SCORE
from rtrain.config.schema import EvalConfig
from rtrain.eval.suite import build_tasks, load_suite, run_suite
from rtrain.models.encoder import EmbeddingModel, Encoder

log = logging.getLogger("rtrain.train")


class SuiteEvaluator:
    """Loads the suite's data once; each call scores the current weights and returns flat metrics."""

    def __init__(self, cfg: EvalConfig, run_dir: str) -> None:
        self.suite = load_suite(cfg.suite, cfg.overrides)
        self.tasks = build_tasks(self.suite)
        self.out = Path(run_dir) / "eval"

    def __call__(self, encoder: Encoder, tokenizer: PreTrainedTokenizerBase, step: int) -> dict[str, float]:
        was_training = encoder.training
        device = str(next(encoder.parameters()).device)
        try:
            model = EmbeddingModel(encoder, tokenizer, device)  # switches to eval mode
            with torch.no_grad():
                report = run_suite(self.suite, {"model": model}, self.out / f"step_{step:07d}", built=self.tasks)
        finally:
            encoder.train(was_training)
        scores = {
            f"eval/{task}": float(by_model["model"]["overall"]["main_score"])
            for task, by_model in report["results"].items()
        }
        scores[SCORE] = sum(scores.values()) / len(scores)
        log.info(f"eval at step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()))
        return scores
