"""Optimizer engines: DeepSpeed (ZeRO 0-3) or plain torch (DDP when distributed), one interface.

Both count backward calls and take an optimizer step every `backward_calls_per_step` calls,
which covers gradient accumulation and the cached (GradCache) loss's one call per chunk.
Neither needs Ray: the training step runs as a plain torch program too (see benchmarks/).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist

from rtrain.config.schema import JobConfig


def lr_lambda(total_steps: int, warmup_steps: int, kind: str) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at each optimizer step: linear warmup, then decay."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)

    return factor


def use_bf16(cfg: JobConfig) -> bool:
    """bf16 when asked, or on GPU under 'auto'; fp32 on CPU."""
    if cfg.train.mixed_precision == "auto":
        return cfg.scaling.use_gpu and torch.cuda.is_available()
    return cfg.train.mixed_precision == "bf16"


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


class Engine(Protocol):
    """What the training step needs from an optimizer backend."""

    module: torch.nn.Module  # what the step calls to encode (DDP/DeepSpeed-wrapped)
    raw: torch.nn.Module  # the unwrapped Encoder (checkpoints, eval, the base-anchor's base forward)
    device: torch.device

    def autocast(self) -> contextlib.AbstractContextManager: ...  # the step's mixed-precision context
    def backward(self, loss: torch.Tensor) -> None: ...
    def step(self) -> bool: ...
    def lr(self) -> float: ...
    def save(self, path: Path) -> None: ...  # optimizer state, at the path rtrain.checkpoint gives
    def load(self, path: Path) -> None: ...


class TorchEngine:
    """AdamW + LambdaLR over `module`, wrapped in DDP when a process group with >1 rank exists."""

    def __init__(self, module: torch.nn.Module, cfg: JobConfig, total_steps: int, calls_per_step: int) -> None:
        self.device = torch.device("cuda", torch.cuda.current_device()) if cfg.scaling.use_gpu else torch.device("cpu")
        module = module.to(self.device)
        self.raw = module
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        self.module = torch.nn.parallel.DistributedDataParallel(module) if distributed else module
        # fused: one kernel over all parameters (CPU and CUDA); the default on CPU loops over them one by
        # one, ~5x slower for MiniLM's 22M parameters (benchmarks/RESULTS.md, train_throughput)
        self.optimizer = torch.optim.AdamW(
            trainable_parameters(module),
            lr=cfg.train.learning_rate,
            weight_decay=cfg.train.weight_decay,
            fused=self.device.type in ("cpu", "cuda"),
        )
        warmup = int(cfg.train.warmup_ratio * total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(total_steps, warmup, cfg.train.scheduler)
        )
        self.max_grad_norm = cfg.train.max_grad_norm
        self.calls_per_step = calls_per_step
        self.accumulation = cfg.train.gradient_accumulation_steps
        self.bf16 = use_bf16(cfg)
        self.calls = 0

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate gradients of `loss / accumulation`; DDP syncs only on a step's last call."""
        last = (self.calls + 1) % self.calls_per_step == 0
        sync = contextlib.nullcontext() if last or not hasattr(self.module, "no_sync") else self.module.no_sync()
        with sync:
            (loss / self.accumulation).backward()
        self.calls += 1

    def step(self) -> bool:
        """Optimizer step once every `calls_per_step` backward calls; True when it stepped."""
        if self.calls % self.calls_per_step != 0:
            return False
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(trainable_parameters(self.raw), self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return True

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save(self, path: Path) -> None:
        """Rank 0 writes the trainable weights, optimizer and scheduler state to the file `path`.

        Only tensors, dicts, lists, tuples and numbers (the LambdaLR's lambdas are functions, which its
        state_dict leaves out), so `load` can refuse anything else.
        """
        if not dist.is_initialized() or dist.get_rank() == 0:
            trainable = {n: p.detach().cpu() for n, p in self.raw.named_parameters() if p.requires_grad}
            torch.save(
                {
                    "trainable": trainable,
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "calls": self.calls,
                },
                path,
            )

    def load(self, path: Path) -> None:
        """Restore what `save` wrote; `weights_only`: a file holding any other pickled object is refused."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        params = dict(self.raw.named_parameters())
        with torch.no_grad():
            for name, value in state["trainable"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.calls = state["calls"]


def deepspeed_config(cfg: JobConfig, world_size: int, calls_per_step: int) -> dict[str, Any]:
    """The DeepSpeed config for this job: ZeRO stage, AdamW, clipping, bf16 on GPU."""
    micro = cfg.train.batch_size_per_worker
    zero: dict[str, Any] = {"stage": cfg.deepspeed.zero_stage}
    if cfg.deepspeed.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu"}
    config: dict[str, Any] = {
        # DeepSpeed counts one "micro batch" per backward call; the cached loss makes several per batch.
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": calls_per_step,
        "train_batch_size": micro * world_size * calls_per_step,
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": cfg.train.learning_rate,
                "weight_decay": cfg.train.weight_decay,
                # torch.optim.AdamW, fused as in TorchEngine: ZeRO 0-3 optimizer step 1.7-3.4x faster on CPU
                "torch_adam": True,
                "fused": True,
            },
        },
        "zero_optimization": zero,
        "gradient_clipping": cfg.train.max_grad_norm,
        "bf16": {"enabled": use_bf16(cfg)},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    for key, value in cfg.deepspeed.overrides.items():
        config[key] = value
    return config


class DeepSpeedEngine:
    """`deepspeed.initialize` over `module`; DeepSpeed owns the optimizer, clipping and accumulation."""

    def __init__(self, module: torch.nn.Module, cfg: JobConfig, total_steps: int, calls_per_step: int) -> None:
        import deepspeed  # imported here: a plain-torch run (e.g. on a GPU box without DeepSpeed) never needs it

        world = dist.get_world_size() if dist.is_initialized() else 1
        warmup = int(cfg.train.warmup_ratio * total_steps)
        self.engine, _, _, _ = deepspeed.initialize(
            model=module,
            model_parameters=trainable_parameters(module),
            config=deepspeed_config(cfg, world, calls_per_step),
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(
                opt, lr_lambda(total_steps, warmup, cfg.train.scheduler)
            ),
        )
        self.module = self.engine
        self.raw = module
        self.device = self.engine.device
        self.accumulation = cfg.train.gradient_accumulation_steps
        self.zero_stage = cfg.deepspeed.zero_stage

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()  # DeepSpeed casts the module itself when bf16 is on

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss / self.accumulation, scale_wrt_gas=False)

    def step(self) -> bool:
        boundary = self.engine.is_gradient_accumulation_boundary()
        self.engine.step()
        return boundary

    def lr(self) -> float:
        return float(self.engine.get_lr()[0])

    def save(self, path: Path) -> None:
        """Every rank writes its ZeRO shard into the folder `path` (DeepSpeed's tag is its name)."""
        self.engine.save_checkpoint(str(path.parent), tag=path.name, exclude_frozen_parameters=True)

    def load(self, path: Path) -> None:
        """DeepSpeed's own loading (pickle: see rtrain.checkpoint on trusting checkpoints)."""
        loaded, _ = self.engine.load_checkpoint(str(path.parent), tag=path.name, load_module_strict=False)
        if loaded is None:
            raise FileNotFoundError(f"no DeepSpeed state under {path}")

    def gathered_parameters(self) -> contextlib.AbstractContextManager:
        """Full parameters on every rank (needed under ZeRO-3 before saving weights)."""
        if self.zero_stage != 3:
            return contextlib.nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(self.raw.parameters()), modifier_rank=None)


def build_engine(module: torch.nn.Module, cfg: JobConfig, total_steps: int, calls_per_step: int) -> Engine:
    """The configured backend over `module`."""
    if cfg.train.backend == "deepspeed":
        return DeepSpeedEngine(module, cfg, total_steps, calls_per_step)
    return TorchEngine(module, cfg, total_steps, calls_per_step)
