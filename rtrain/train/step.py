"""One training micro-batch: encode, InfoNCE, backward, (maybe) optimizer step. Plain torch, no Ray."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rtrain.config.schema import JobConfig, LossConfig
from rtrain.losses import CachedInfoNCELoss, InfoNCELoss
from rtrain.train.engine import Engine


def build_loss(cfg: LossConfig) -> InfoNCELoss | CachedInfoNCELoss:
    """The configured contrastive loss (cached when `loss.cached`)."""
    loss = InfoNCELoss(
        temperature=cfg.temperature,
        symmetric=cfg.symmetric,
        gather_across_workers=cfg.gather_across_workers,
        mask_false_negatives=cfg.mask_false_negatives,
    )
    return CachedInfoNCELoss(loss, cfg.mini_batch_size) if cfg.cached else loss


def backward_calls_per_batch(cfg: JobConfig) -> int:
    """Backward calls one micro-batch makes: 1, or one per chunk of each text group under GradCache."""
    if not cfg.loss.cached:
        return 1
    chunks = -(-cfg.train.batch_size_per_worker // cfg.loss.mini_batch_size)
    n_neg = cfg.train.batch_size_per_worker * cfg.loss.negatives_per_query
    neg_chunks = -(-n_neg // cfg.loss.mini_batch_size) if n_neg else 0
    return 2 * chunks + neg_chunks


@dataclass
class StepOutput:
    loss: float
    stepped: bool


def train_step(
    engine: Engine, loss_fn: InfoNCELoss | CachedInfoNCELoss, batch: dict[str, torch.Tensor]
) -> StepOutput:
    """Run one micro-batch on `engine`; the engine decides when the optimizer steps."""
    batch = {k: v.to(engine.device, non_blocking=True) for k, v in batch.items()}
    encode = engine.module
    if isinstance(loss_fn, CachedInfoNCELoss):
        stepped = False

        def backward(surrogate: torch.Tensor) -> None:
            nonlocal stepped
            engine.backward(surrogate)
            stepped = engine.step()

        with engine.autocast():
            loss = loss_fn.forward_backward(encode, batch, backward)
        return StepOutput(float(loss), stepped)

    with engine.autocast():
        query = encode(batch["q_input_ids"], batch["q_attention_mask"])  # (B, dim)
        positive = encode(batch["p_input_ids"], batch["p_attention_mask"])  # (B, dim)
        negatives = (
            encode(batch["n_input_ids"], batch["n_attention_mask"]) if "n_input_ids" in batch else None
        )  # (B*k, dim)
        loss = loss_fn(query.float(), positive.float(), None if negatives is None else negatives.float(),
                       batch["p_hash"], batch.get("n_hash"))
    engine.backward(loss)
    return StepOutput(float(loss.detach()), engine.step())
