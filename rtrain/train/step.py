"""One training micro-batch: encode, InfoNCE, backward, (maybe) optimizer step. Plain torch, no Ray."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rtrain.config.schema import JobConfig, LossConfig
from rtrain.losses import BaseAnchorLoss, CachedInfoNCELoss, InfoNCELoss
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


def build_anchor(cfg: LossConfig) -> BaseAnchorLoss | None:
    """The base-anchor term when `loss.base_anchor` > 0, else None."""
    return BaseAnchorLoss(cfg.base_anchor) if cfg.base_anchor > 0 else None


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
    loss: float  # the whole loss: contrastive + anchor
    stepped: bool
    anchor: float | None = None  # the base-anchor term alone, when on


def train_step(
    engine: Engine,
    loss_fn: InfoNCELoss | CachedInfoNCELoss,
    batch: dict[str, torch.Tensor],
    anchor: BaseAnchorLoss | None = None,
) -> StepOutput:
    """Run one micro-batch on `engine`; the engine decides when the optimizer steps.

    With `anchor`, every text of the batch is also embedded by the frozen base (`Encoder.encode_base`)
    and the anchor term joins the loss.
    """
    batch = {k: v.to(engine.device, non_blocking=True) for k, v in batch.items()}
    encode = engine.module
    encode_base = engine.raw.encode_base if anchor is not None else None
    if isinstance(loss_fn, CachedInfoNCELoss):
        stepped = False

        def backward(surrogate: torch.Tensor) -> None:
            nonlocal stepped
            engine.backward(surrogate)
            stepped = engine.step()

        with engine.autocast():
            loss = loss_fn.forward_backward(encode, batch, backward, anchor=anchor, encode_base=encode_base)
        return StepOutput(float(loss), stepped, None if anchor is None else anchor.last_value)

    with engine.autocast():
        query = encode(batch["q_input_ids"], batch["q_attention_mask"])  # (B, dim)
        positive = encode(batch["p_input_ids"], batch["p_attention_mask"])  # (B, dim)
        negatives = (
            encode(batch["n_input_ids"], batch["n_attention_mask"]) if "n_input_ids" in batch else None
        )  # (B*k, dim)
        loss = loss_fn(query.float(), positive.float(), None if negatives is None else negatives.float(),
                       batch["p_hash"], batch.get("n_hash"))
        if anchor is not None:
            groups = [(query, "q"), (positive, "p")] + ([(negatives, "n")] if negatives is not None else [])
            embeddings = torch.cat([emb.float() for emb, _ in groups])  # (rows, dim)
            base = torch.cat([encode_base(batch[f"{g}_input_ids"], batch[f"{g}_attention_mask"]).float()
                              for _, g in groups])  # (rows, dim)
            loss = loss + anchor(embeddings, base)
    engine.backward(loss)
    return StepOutput(float(loss.detach()), engine.step(), None if anchor is None else anchor.last_value)
