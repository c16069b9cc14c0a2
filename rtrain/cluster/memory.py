"""Model size and per-worker memory estimate for a job, from the model's config alone (no weights).

The architecture is read with `transformers.AutoConfig` and the model is instantiated on the `meta`
device, so parameters are counted exactly without allocating or downloading weights. LoRA's
trainable parameters are counted over the same linear layers `rtrain.models.lora` adapts.

The memory estimate covers weights, gradients and optimizer states as DeepSpeed (ZeRO 0-3) or
torch DDP hold them, and a rough activation term (per-layer formula of Korthikanti et al. 2022,
"Reducing Activation Recomputation in Large Transformer Models"); CUDA context, allocator slack and
communication buffers are not included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtrain.config.load import ConfigError
from rtrain.config.schema import JobConfig

GIB = 1024**3


@dataclass(frozen=True)
class ModelSize:
    """Parameter counts and the shape numbers the activation estimate needs."""

    source: str  # where the architecture came from (a folder or a config.json)
    total_params: int
    trainable_params: int
    hidden_size: int
    num_layers: int
    num_heads: int
    lora_targets: tuple[str, ...] = ()


def _config_candidates(name_or_path: str, config_dirs: Sequence[Path]) -> list[Path]:
    """Folders that may hold the model's config.json: the model path itself, then shipped copies."""
    from rtrain.models.loading import resolve_model_path

    found: list[Path] = []
    try:
        local = Path(resolve_model_path(name_or_path))
        if (local / "config.json").is_file():
            found.append(local)
    except FileNotFoundError:
        pass
    for root in config_dirs:
        candidate = Path(root) / name_or_path
        if (candidate / "config.json").is_file():
            found.append(candidate)
    return found


def load_model_config(name_or_path: str, config_dirs: Sequence[Path] = ()) -> tuple[Any, str]:
    """The model's architecture config, never touching the network.

    Looks in: the model folder (local or pkg://), the local Hugging Face cache for a hub name, then
    `<dir>/<name_or_path>/config.json` for each of `config_dirs` (e.g. jobs/configs/ for recipes whose
    model is a hub name). Returns (transformers config, where it came from); ConfigError if none has it.
    """
    from transformers import AutoConfig

    candidates = _config_candidates(name_or_path, config_dirs)
    if candidates:
        return AutoConfig.from_pretrained(str(candidates[0])), str(candidates[0] / "config.json")
    try:
        return AutoConfig.from_pretrained(name_or_path, local_files_only=True), f"{name_or_path} (Hugging Face cache)"
    except (OSError, ValueError):
        pass
    dirs = ", ".join(str(d) for d in config_dirs) or "(none)"
    raise ConfigError(
        f"model.name_or_path={name_or_path!r}: no config.json here (not a local folder, not in the Hugging Face "
        f"cache, not under {dirs}); for the plan, point it at a local model folder or add "
        f"<config dir>/{name_or_path}/config.json (the architecture only, no weights)"
    )


def model_size(cfg: JobConfig, config_dirs: Sequence[Path] = ()) -> ModelSize:
    """Exact parameter counts of the job's model and its LoRA adapters, built on the meta device."""
    import torch
    from transformers import AutoModel

    from rtrain.models.lora import SKIP, detect_target_modules, linear_leaf_names

    config, source = load_model_config(cfg.model.name_or_path, config_dirs)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    targets: tuple[str, ...] = ()
    if cfg.lora.enabled:
        if cfg.lora.target_modules == "auto":
            targets = tuple(detect_target_modules(model))
        else:
            missing = sorted(set(cfg.lora.target_modules) - linear_leaf_names(model))
            if missing:
                raise ConfigError(f"lora.target_modules {missing} are not linear layers of {source}")
            targets = tuple(cfg.lora.target_modules)
        trainable = 0
        for name, module in model.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if isinstance(module, torch.nn.Linear) and leaf in targets and not any(p in SKIP for p in name.split(".")):
                trainable += cfg.lora.r * (module.in_features + module.out_features)  # A: r x in, B: out x r
        total += trainable
    else:
        trainable = total
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return ModelSize(
        source=source,
        total_params=total,
        trainable_params=trainable,
        hidden_size=int(text.hidden_size),
        num_layers=int(text.num_hidden_layers),
        num_heads=int(text.num_attention_heads),
        lora_targets=targets,
    )


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per worker (per GPU when scaling.use_gpu), by component, with the assumptions made."""

    precision: str  # "bf16" or "fp32"
    sharding: str  # e.g. "ZeRO-2 over 32 workers"
    weights: int
    gradients: int
    optimizer: int
    activations: int
    optimizer_on_cpu: int = 0  # optimizer states offloaded to host memory (deepspeed.offload_optimizer)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations


def uses_bf16(cfg: JobConfig) -> bool:
    """bf16 when asked for, or under 'auto' when the job runs on GPUs (as `rtrain.train.engine` decides)."""
    if cfg.train.mixed_precision == "auto":
        return cfg.scaling.use_gpu
    return cfg.train.mixed_precision == "bf16"


def activation_bytes(sequences: int, length: int, size: ModelSize, element: int, checkpointing: bool) -> int:
    """Rough bytes kept for backward by one forward of `sequences` x `length` tokens.

    Per layer: s*b*(34h + 5*a*s) bytes at 2 bytes per element (Korthikanti et al. 2022); with
    gradient checkpointing, each layer keeps only its input and one layer is recomputed at a time.
    """
    s, b, h, a = length, sequences, size.hidden_size, size.num_heads
    per_layer = s * b * (34 * h + 5 * a * s) * element // 2
    if checkpointing:
        return size.num_layers * s * b * h * element + per_layer
    return size.num_layers * per_layer


def estimate_memory(cfg: JobConfig, size: ModelSize) -> MemoryEstimate:
    """Weights, gradients, optimizer states (sharded per ZeRO stage) and activations per worker."""
    world = cfg.scaling.num_workers
    bf16 = uses_bf16(cfg)
    deepspeed = cfg.train.backend == "deepspeed"
    stage = cfg.deepspeed.zero_stage if deepspeed else 0
    notes: list[str] = []
    # DeepSpeed casts the whole module to bf16 and keeps fp32 master copies of the trainable weights;
    # torch DDP (autocast) keeps fp32 weights and only computes in bf16.
    weight_bytes = 2 if bf16 and deepspeed else 4
    element = 2 if bf16 else 4
    master = 4 if deepspeed and (bf16 or stage >= 1) else 0
    optimizer_per_param = master + 8  # + AdamW exp_avg and exp_avg_sq in fp32
    weights = size.total_params * weight_bytes
    gradients = size.trainable_params * 4  # fp32 gradient accumulation
    optimizer = size.trainable_params * optimizer_per_param
    if stage >= 1:
        optimizer //= world
    if stage >= 2:
        gradients //= world
    if stage >= 3:
        weights //= world
        notes.append("ZeRO-3 also holds the gathered weights of the layers being computed (stage3_max_live_parameters)")
    offloaded = 0
    if deepspeed and cfg.deepspeed.offload_optimizer:
        offloaded, optimizer = optimizer, 0
        notes.append("optimizer states offloaded to CPU memory (deepspeed.offload_optimizer)")
    k = cfg.loss.negatives_per_query
    per_worker = cfg.train.batch_size_per_worker
    q_len, p_len = cfg.model.query_max_length, cfg.model.passage_max_length
    ckpt = cfg.model.gradient_checkpointing
    if cfg.loss.cached:
        m = cfg.loss.mini_batch_size
        acts = max(activation_bytes(m, q_len, size, element, ckpt), activation_bytes(m, p_len, size, element, ckpt))
        notes.append(f"GradCache: activations of one chunk of {m} sequences at a time")
    else:
        acts = activation_bytes(per_worker, q_len, size, element, ckpt) + activation_bytes(
            per_worker * (1 + k), p_len, size, element, ckpt
        )
    candidates = world * per_worker * (1 + k)
    loss_bytes = per_worker * candidates * 4 * 3  # fp32 logits, softmax and their gradient
    loss_bytes += candidates * size.hidden_size * 4 * 2  # gathered embeddings and their gradient
    notes.append("activations: rough per-layer estimate at padded maximum lengths")
    sharding = f"ZeRO-{stage} over {world} workers" if deepspeed else f"DDP over {world} workers (no sharding)"
    return MemoryEstimate(
        precision="bf16" if bf16 else "fp32",
        sharding=sharding,
        weights=weights,
        gradients=gradients,
        optimizer=optimizer,
        activations=acts + loss_bytes,
        optimizer_on_cpu=offloaded,
        notes=notes,
    )
