"""Both optimizer backends take the same step: TorchEngine (fused AdamW) and DeepSpeed ZeRO-0/2 (torch AdamW,
fused, through DeepSpeed's config) give the same weights after a few steps of rtrain's training step."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rtrain.config import resolve_job
from rtrain.data.schema import rows_to_table
from rtrain.data.tokenize import PairCollator, PairTokenizer
from rtrain.losses.registry import backward_calls_per_batch, build_loss
from rtrain.models.encoder import build_encoder
from rtrain.train.engine import DeepSpeedEngine, TorchEngine, build_engine
from rtrain.train.step import train_step

from tiny import job_dict, pair_rows

STEPS = 3
BACKENDS = {"torch": ("ddp", 0), "zero0": ("deepspeed", 0), "zero2": ("deepspeed", 2)}


def _train(model_dir: str, backend: str, zero: int) -> tuple[dict[str, torch.Tensor], object, list[float], float]:
    """STEPS optimizer steps of full fine-tuning on fixed batches; (weights, engine, losses, largest change)."""
    cfg = resolve_job(
        job_dict(
            Path(model_dir),
            Path("unused.jsonl"),
            Path("unused"),
            lora={"enabled": False},
            train={
                "backend": backend,
                "batch_size_per_worker": 4,
                "learning_rate": 1e-3,
                "weight_decay": 0.01,
                "max_grad_norm": 0.5,
                "warmup_ratio": 0.0,
                "mixed_precision": "fp32",
            },
            deepspeed={"zero_stage": zero},
            scaling={"num_workers": 1},
        )
    )
    torch.manual_seed(0)
    encoder, tokenizer = build_encoder(cfg.model, cfg.lora)
    encoder.eval()  # no dropout: the backends must agree step for step
    before = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    engine = build_engine(encoder, cfg, STEPS, backward_calls_per_batch(cfg))
    table = PairTokenizer(cfg.model, cfg.loss.negatives_per_query)(rows_to_table(pair_rows(4 * STEPS, negatives=1)))
    collate = PairCollator(tokenizer.pad_token_id, cfg.loss.negatives_per_query)
    loss_fn = build_loss(cfg.loss)
    losses = []
    for i in range(STEPS):
        out = train_step(engine, loss_fn, collate(table.slice(4 * i, 4).to_pydict()))
        if not out.stepped:
            raise RuntimeError(f"{backend}: step {i} did not step the optimizer")
        losses.append(out.loss)
    weights = {k: v.detach().clone() for k, v in engine.raw.state_dict().items()}
    moved = max((weights[k] - before[k]).abs().max().item() for k in before)
    return weights, engine, losses, moved


def _worker(rank: int, init_file: str, model_dir: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="1")  # what Ray Train sets for DeepSpeed
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=1)
    try:
        results = {}
        for name, (backend, zero) in BACKENDS.items():
            weights, engine, losses, moved = _train(model_dir, backend, zero)
            if isinstance(engine, DeepSpeedEngine):
                ds_opt = engine.engine.optimizer
                base = getattr(ds_opt, "optimizer", ds_opt)  # ZeRO >= 1 wraps the torch optimizer
            elif isinstance(engine, TorchEngine):
                base = engine.optimizer
            else:
                raise TypeError(type(engine))
            results[name] = {
                "weights": weights,
                "losses": losses,
                "moved": moved,
                "optimizer": type(base).__name__,
                "fused": base.defaults.get("fused"),
            }
        torch.save(results, Path(out) / "results.pt")
    finally:
        dist.destroy_process_group()


def test_deepspeed_and_torch_engines_take_the_same_fused_adamw_step(tiny_model: Path, tmp_path: Path) -> None:
    # one spawned process: DeepSpeed needs a process group, which must not leak into other tests
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tiny_model), str(tmp_path)), nprocs=1, join=True)
    results = torch.load(tmp_path / "results.pt")
    for name, r in results.items():
        assert (r["optimizer"], r["fused"]) == ("AdamW", True), (name, r["optimizer"], r["fused"])
    ref = results["torch"]
    assert ref["moved"] > 1e-4, ref["moved"]  # the steps did change the weights
    for name in ("zero0", "zero2"):
        assert torch.allclose(torch.tensor(results[name]["losses"]), torch.tensor(ref["losses"]), atol=1e-5)
        for key, want in ref["weights"].items():
            got = results[name]["weights"][key]
            assert torch.allclose(got, want, atol=1e-6), (name, key, (got - want).abs().max().item())
