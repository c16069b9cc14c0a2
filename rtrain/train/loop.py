"""The per-worker training function run by `ray.train.torch.TorchTrainer`.

A plain function in the Ray Train v2 style: it reads its shard with `get_dataset_shard`, resumes
from `get_checkpoint`, and reports metrics and checkpoints with `ray.train.report`.
"""

from __future__ import annotations

import bisect
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray.train
import torch
import torch.distributed as dist

from rtrain.checkpoint import LOG_FILE, TrainerState, checkpoint_name, restore_checkpoint, save_checkpoint
from rtrain.config.schema import JobConfig
from rtrain.data.batch import GROUP, QUERY, ROW
from rtrain.data.dataset import dataset_name
from rtrain.data.tokenize import PairCollator, count_tokens
from rtrain.ledger import LedgerWriter
from rtrain.losses.registry import backward_calls_per_batch, build_loss
from rtrain.models.encoder import build_encoder
from rtrain.train.engine import build_engine
from rtrain.train.step import build_anchor, train_step
from rtrain.train.wandb_log import WandbLogger

log = logging.getLogger("rtrain.train")


@dataclass
class TrainPlan:
    """What the driver computed from the validated data, passed to every worker."""

    total_steps: int
    epoch_ends: list[int]  # optimizer steps done at the end of each epoch
    run_dir: str
    rows: int  # pairs per epoch
    groups: list[str]  # tasks (or sources) behind each batch's `group` ids
    data_mix: dict[str, Any] = field(default_factory=dict)  # the mix manifest (rank 0 logs it to W&B)


class _Meter:
    """Loss, throughput and data-wait accumulators between two log lines."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss_sum, self.batches, self.pairs, self.tokens = 0.0, 0, 0, 0
        self.anchor_sum: float | None = None  # base-anchor term, when the loss has one
        self.wait, self.start = 0.0, time.perf_counter()

    def metrics(self, world: int) -> dict[str, float]:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        anchor = self.anchor_sum or 0.0
        values = torch.tensor([self.loss_sum, self.batches, self.wait / elapsed, anchor], dtype=torch.float64)
        if dist.is_initialized():
            dist.all_reduce(values)
            values[2] /= world
        metrics = {
            "loss": float(values[0] / max(values[1], 1)),
            "pairs_per_s": self.pairs * world / elapsed,
            "tokens_per_s": self.tokens * world / elapsed,
            "data_wait_frac": float(values[2]),
        }
        if self.anchor_sum is not None:
            metrics["anchor_loss"] = float(values[3] / max(values[1], 1))
        return metrics


def seek_rows(batches: Iterator[dict[str, torch.Tensor]], row: int, rank: int) -> Iterator[dict[str, torch.Tensor]]:
    """This rank's batches from stream position `row` on (0, or the rows its checkpoint trained on).

    `rtrain train --resume` hands the workers streams that already start at `row` (the driver filtered
    them). After an automatic restart (scaling.max_failures) Ray Train hands the same full streams as at
    the start, so the batches before `row` are read again and skipped here.
    """
    skipped = 0
    for batch in batches:
        first = int(batch[ROW][0])
        if first < row:
            skipped += 1
            continue
        if first != row:
            raise RuntimeError(f"rank {rank}: the stream resumes at row {first}, but the checkpoint trained {row}")
        if skipped and rank == 0:
            log.info(f"skipped {skipped} micro-batches trained before the restart (read again: an automatic restart)")
        yield batch
        break
    yield from batches


def _append_log(plan: TrainPlan, record: dict[str, Any]) -> None:
    with open(Path(plan.run_dir) / LOG_FILE, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Train on this worker's shard until the planned number of optimizer steps."""
    cfg = JobConfig.model_validate(config["job"])
    plan = TrainPlan(**config["plan"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(message)s")
    torch.manual_seed(cfg.train.seed)  # identical LoRA init on every rank
    # One intra-op thread per reserved CPU: more threads than cores thrash when workers share a machine.
    torch.set_num_threads(max(1, int(cfg.scaling.cpus_per_worker)))

    encoder, tokenizer = build_encoder(cfg.model, cfg.lora)
    loss_fn = build_loss(cfg.loss)
    anchor = build_anchor(cfg.loss)
    calls_per_step = cfg.train.gradient_accumulation_steps * backward_calls_per_batch(cfg)
    engine = build_engine(encoder, cfg, plan.total_steps, calls_per_step)

    state = TrainerState()
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = restore_checkpoint(engine, cfg, Path(directory))
        log.info(f"resumed at step {state.step} (micro-batch {state.batches_done} of this rank's stream)")
        if rank == 0:
            _append_log(plan, {"resumed_at_step": state.step})
    ledger = LedgerWriter(plan.run_dir, rank) if cfg.output.ledger else None
    if ledger is not None:
        ledger.start(state.step, state.batches_done)

    wandb = WandbLogger(cfg, plan.run_dir, enabled=rank == 0 and cfg.logging.wandb)
    evaluator = None
    if cfg.eval is not None and rank == 0:
        from rtrain.train.evaluation import SuiteEvaluator  # eval deps (faiss, mteb) load only when used

        evaluator = SuiteEvaluator(cfg.eval, plan.run_dir)
    eval_every = (cfg.eval.every_steps or cfg.train.checkpoint_every_steps) if cfg.eval else None
    if wandb.run is not None:  # rank 0: the realised mix (rows by source, task, language) with the run's config
        wandb.config({"data_mix": plan.data_mix})
    batches = iter(
        ray.train.get_dataset_shard(dataset_name(rank)).iter_torch_batches(
            batch_size=cfg.train.batch_size_per_worker,
            collate_fn=PairCollator(tokenizer.pad_token_id, cfg.loss.negatives_per_query),
            drop_last=True,
        )
    )
    batches = seek_rows(batches, state.batches_done * cfg.train.batch_size_per_worker, rank)
    mixed = MixedBatchCounter(enabled=cfg.data.homogeneous_batches != "off")
    meter = _Meter()
    metrics: dict[str, float] = {}
    if cfg.eval is not None and cfg.eval.baseline and checkpoint is None:
        # Step 0 = the base model (LoRA's B starts at zero; full fine-tuning has not stepped): scored and
        # kept as checkpoint 0, so selection keeps the base when no trained checkpoint beats it.
        report = {"step": 0}
        if evaluator is not None:
            report.update(evaluator(engine.raw, tokenizer, 0))
            _append_log(plan, report)
            wandb.log(report, 0)
        _report(engine, cfg, state, report, rank)

    while state.step < plan.total_steps:
        wait_start = time.perf_counter()
        batch = next(batches)
        meter.wait += time.perf_counter() - wait_start
        mixed.add(batch.get(GROUP))
        out = train_step(engine, loss_fn, batch, anchor, cfg.train.length_aware_tokens)
        if ledger is not None:  # the rows Ray Data delivered, for this micro-batch of the optimizer step to come
            ledger.batch(state.batches_done, state.step + 1, batch[ROW].tolist())
        state.batches_done += 1
        meter.loss_sum += out.loss
        if out.anchor is not None:
            meter.anchor_sum = (meter.anchor_sum or 0.0) + out.anchor
        meter.batches += 1
        meter.pairs += batch[QUERY.ids].shape[0]
        meter.tokens += count_tokens(batch)
        if not out.stepped:
            continue
        state.step += 1
        mixed.end_step()
        last = state.step == plan.total_steps
        if state.step % cfg.train.log_every_steps == 0 or last:
            metrics = {
                **meter.metrics(world),
                "lr": engine.lr(),
                "step": state.step,
                "epoch": bisect.bisect_left(plan.epoch_ends, state.step),
                **mixed.metrics(),
            }
            meter.reset()
            if rank == 0:
                log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
                _append_log(plan, metrics)
            wandb.log(metrics, state.step)
        evaluate = eval_every is not None and (state.step % eval_every == 0 or last)
        if state.step % cfg.train.checkpoint_every_steps == 0 or evaluate or last:
            report = dict(metrics or {"step": state.step})
            if evaluate and evaluator is not None:  # rank 0 scores while the others wait in report
                scores = evaluator(engine.raw, tokenizer, state.step)
                report.update(scores)
                _append_log(plan, {"step": state.step, **scores})
                wandb.log(report, state.step)
            _report(engine, cfg, state, report, rank)
    wandb.finish()
    if ledger is not None:
        ledger.close()


class MixedBatchCounter:
    """With homogeneous batches on: counts optimizer steps whose global batch mixed groups (should stay 0).

    Each rank tracks the min and max group id of its micro-batches in a step; one all_reduce(MAX) of
    (max, -min) at the step's end tells whether all ranks saw one group, and which.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.mixed_steps, self.last_group = 0, -1
        self._lo, self._hi = None, None

    def add(self, groups: torch.Tensor | None) -> None:
        if self.enabled and groups is not None:
            lo, hi = int(groups.min()), int(groups.max())
            self._lo = lo if self._lo is None else min(self._lo, lo)
            self._hi = hi if self._hi is None else max(self._hi, hi)

    def end_step(self) -> None:
        if not self.enabled or self._lo is None:
            return
        bounds = torch.tensor([self._hi, -self._lo], dtype=torch.int64)
        if dist.is_initialized():
            dist.all_reduce(bounds, op=dist.ReduceOp.MAX)
        hi, lo = int(bounds[0]), -int(bounds[1])
        self.mixed_steps += int(hi != lo)
        self.last_group = hi if hi == lo else -1
        self._lo = self._hi = None

    def metrics(self) -> dict[str, int]:
        """Mixed steps so far, and the group id (index into TrainPlan.groups) of the last step, -1 if mixed."""
        return {"mixed_batches": self.mixed_steps, "batch_group": self.last_group} if self.enabled else {}


def _report(engine: Any, cfg: JobConfig, state: TrainerState, metrics: dict[str, float], rank: int) -> None:
    """Save this rank's part of the checkpoint and report it with the metrics (a barrier for all ranks)."""
    with tempfile.TemporaryDirectory(prefix="rtrain-ckpt-") as tmp:
        directory = Path(tmp)
        wrote = save_checkpoint(engine, cfg, state, metrics, directory, rank)
        ray.train.report(
            metrics,
            checkpoint=ray.train.Checkpoint.from_directory(tmp) if wrote else None,
            checkpoint_dir_name=checkpoint_name(state.step),
        )
    if rank == 0:
        log.info(f"checkpoint at step {state.step}: {json.dumps({k: round(v, 4) for k, v in metrics.items()})}")
