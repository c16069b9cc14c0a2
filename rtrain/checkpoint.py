"""The checkpoint's one owner: its folder layout, writing it and reading it back.

A run dir (`<output.storage_path>/<output.name>`) holds:
- `job.yaml`: the job the run was started with (`--resume` reads it back)
- `train_log.jsonl`: one JSON line per log step, per eval and per resume, written by rank 0
- `checkpoint_<step, 7 digits>/`: one folder per reported checkpoint (Ray Train keeps
  `output.num_checkpoints_to_keep` of them, the best by `eval_score` when the job evaluates)
- `model/`: the exported sentence-transformers model, when `output.export` is on (`rtrain.export`)

A checkpoint folder holds:
- `trainer_state.json`: `TrainerState`: `step` (optimizer steps done) and `batches_done` (micro-batches
  of each rank's planned stream already consumed: the data position a resume skips to)
- `metrics.json`: the metrics reported with it (the last log step's; with the eval scores and
  `eval_score` when it evaluated; `{"step": n}` alone when nothing was logged yet)
- `job.yaml`: the resolved job config
- `adapter/`: the PEFT LoRA adapter (`save_pretrained`: safetensors + adapter_config.json), or `model/`
  (the backbone's full weights) when `lora.enabled` is false
- the optimizer engine's state, for resume, at the path `engine_state_path` gives the engine:
  - backend `ddp`: `torch_engine.pt`, written by rank 0: the trainable weights, the AdamW and LambdaLR
    state dicts and the backward-call count; only tensors, dicts, lists, tuples and numbers, read back
    with `torch.load(weights_only=True)`, so a tampered file is refused instead of run
  - backend `deepspeed`: `deepspeed/`, DeepSpeed's `save_checkpoint` with that tag (the module's
    trainable weights and one ZeRO optimizer shard per rank); DeepSpeed also writes `latest` and its
    `zero_to_fp32.py` / `zero_to_torch.py` scripts into the checkpoint folder

Trust: DeepSpeed loads its shards with pickle (`torch.load(weights_only=False)`), which runs any code a
crafted file holds. Only resume from checkpoints you wrote (or trust as much as your own code).

With an eval suite, `checkpoint_0000000` is the base model (scored before the first step, `eval.baseline`):
selection by `eval_score` then keeps the base when no trained checkpoint beats it, and `selection()`
says so from the run's `train_log.jsonl`, which holds every eval (kept checkpoints or not).

Imports only the lower layers (`rtrain.config`, `rtrain.models`), so training, eval and export can all
read checkpoints without importing one another.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtrain.config.load import dump_yaml, resolve_job
from rtrain.config.schema import JobConfig

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from rtrain.models.encoder import EmbeddingModel

# the run dir
JOB_FILE = "job.yaml"  # also in every checkpoint folder
LOG_FILE = "train_log.jsonl"  # one line per log step and per eval, written by rank 0
CHECKPOINT_PREFIX = "checkpoint_"
EXPORT_DIR = "model"  # the exported sentence-transformers model
# a checkpoint folder
STATE_FILE = "trainer_state.json"
METRICS_FILE = "metrics.json"
ADAPTER_DIR = "adapter"  # LoRA runs (also copied into the exported model)
MODEL_DIR = "model"  # full fine-tuning
ENGINE_STATE = {"ddp": "torch_engine.pt", "deepspeed": "deepspeed"}  # by train.backend
SCORE = "eval_score"  # mean of the eval suite's task main scores: checkpoint selection and Tune use it


@dataclass
class TrainerState:
    """Where training stands: saved in every checkpoint, restored on resume."""

    step: int = 0
    batches_done: int = 0  # micro-batches of this rank's planned stream already consumed (the data position)


def checkpoint_name(step: int) -> str:
    """The checkpoint folder's name for `step`, e.g. `checkpoint_0000042`."""
    return f"{CHECKPOINT_PREFIX}{step:07d}"


def engine_state_path(directory: Path, backend: str) -> Path:
    """Where the `backend` engine keeps its optimizer state inside checkpoint folder `directory`."""
    return Path(directory) / ENGINE_STATE[backend]


def job_file(folder: Path) -> Path:
    """The job file of a run dir or a checkpoint folder."""
    return Path(folder) / JOB_FILE


def write_job(folder: Path, cfg: JobConfig) -> Path:
    """Write `cfg` as the job file of a run dir or checkpoint folder."""
    path = job_file(folder)
    path.write_text(dump_yaml(cfg))
    return path


def load_job(folder: Path, overrides: Sequence[str] = ()) -> JobConfig:
    """The validated job of a run dir or checkpoint folder, with `overrides` applied."""
    return resolve_job(job_file(folder), overrides)


def save_checkpoint(
    engine: Any, cfg: JobConfig, state: TrainerState, metrics: dict[str, float], directory: Path, rank: int
) -> bool:
    """Write this rank's share of a checkpoint into `directory`; True if it wrote any file.

    Every rank must call this: DeepSpeed saves a shard per rank, and under ZeRO-3 the weights are
    gathered collectively before rank 0 writes the adapter.
    """
    engine.save(engine_state_path(directory, cfg.train.backend))
    gather = getattr(engine, "gathered_parameters", contextlib.nullcontext)
    with gather():
        if rank == 0:
            weights = directory / (ADAPTER_DIR if cfg.lora.enabled else MODEL_DIR)
            engine.raw.backbone.save_pretrained(str(weights))
    if rank == 0:
        (directory / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
        (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        write_job(directory, cfg)
    return any(directory.iterdir())


def restore_checkpoint(engine: Any, cfg: JobConfig, directory: Path) -> TrainerState:
    """Load the engine's state (weights, optimizer, scheduler) from `directory`; its trainer state."""
    state = TrainerState(**load_trainer_state(directory))
    engine.load(engine_state_path(directory, cfg.train.backend))
    return state


def is_checkpoint(path: Path) -> bool:
    """Whether `path` is an rtrain checkpoint folder."""
    return (Path(path) / STATE_FILE).is_file()


def checkpoints(run_dir: Path) -> list[Path]:
    """The checkpoint folders of a run dir (unordered)."""
    return [p.parent for p in Path(run_dir).glob(f"{CHECKPOINT_PREFIX}*/{STATE_FILE}")]


def holds_checkpoint(path: Path) -> bool:
    """Whether `path` is an rtrain checkpoint folder or a run dir with at least one."""
    return is_checkpoint(path) or bool(checkpoints(path))


def load_trainer_state(directory: Path) -> dict[str, int]:
    """The trainer state stored in a checkpoint folder, as written (`TrainerState`'s fields)."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not an rtrain checkpoint: {STATE_FILE} is missing")
    return json.loads(path.read_text())


def load_metrics(directory: Path) -> dict[str, Any]:
    """The metrics reported with a checkpoint; empty when it has none."""
    path = Path(directory) / METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def latest_checkpoint(run_or_checkpoint: Path) -> Path:
    """The checkpoint folder with the highest step in a run dir (or the folder itself if it is one)."""
    path = Path(run_or_checkpoint)
    if is_checkpoint(path):
        return path
    candidates = checkpoints(path)
    if not candidates:
        raise FileNotFoundError(
            f"{path} holds no rtrain checkpoint (no {CHECKPOINT_PREFIX}*/{STATE_FILE}); "
            "pass a run dir or a checkpoint folder"
        )
    return max(candidates, key=lambda p: load_trainer_state(p)["step"])


def best_checkpoint(run_or_checkpoint: Path) -> Path:
    """The checkpoint with the highest `eval_score` when training evaluated, else the latest one."""
    path = Path(run_or_checkpoint)
    if is_checkpoint(path):
        return path
    scored = []
    for checkpoint in checkpoints(path):
        metrics = load_metrics(checkpoint)
        if SCORE in metrics:
            scored.append((metrics[SCORE], -load_trainer_state(checkpoint)["step"], checkpoint))
    return max(scored)[2] if scored else latest_checkpoint(path)  # a tie goes to the earlier step (the base)


def adapter_path(checkpoint: Path) -> Path | None:
    """The checkpoint's LoRA adapter folder; None for a full fine-tuning checkpoint."""
    adapter = Path(checkpoint) / ADAPTER_DIR
    return adapter if adapter.is_dir() else None


def checkpoint_backbone(
    checkpoint: Path, cfg: JobConfig, merge: bool = True
) -> tuple[PreTrainedModel | PeftModel, PreTrainedTokenizerBase]:
    """The base model with the checkpoint's LoRA adapter (merged, or kept as PEFT layers), or its full weights."""
    from peft import PeftModel
    from transformers import AutoModel

    from rtrain.models.loading import load_backbone

    base, tokenizer = load_backbone(cfg.model.name_or_path)
    adapter = adapter_path(checkpoint)
    if adapter is not None:
        peft_model = PeftModel.from_pretrained(base, str(adapter))
        return (peft_model.merge_and_unload() if merge else peft_model), tokenizer
    full = checkpoint / MODEL_DIR
    if full.is_dir():
        return AutoModel.from_pretrained(str(full)), tokenizer
    raise FileNotFoundError(f"{checkpoint} has neither {ADAPTER_DIR}/ nor {MODEL_DIR}/: not an rtrain checkpoint")


def checkpoint_embedding_model(run_or_checkpoint: Path, device: str = "cpu", merge: bool = True) -> EmbeddingModel:
    """rtrain's own encoder for a run's best checkpoint (as exported); `merge=False` keeps the LoRA layers."""
    from rtrain.models.encoder import EmbeddingModel, Encoder

    checkpoint = best_checkpoint(Path(run_or_checkpoint))
    cfg = load_job(checkpoint)
    backbone, tokenizer = checkpoint_backbone(checkpoint, cfg, merge=merge)
    return EmbeddingModel(Encoder(backbone, cfg.model), tokenizer, device)


@dataclass(frozen=True)
class Selection:
    """How the selected checkpoint compares with the base model on the eval suite used for selection."""

    step: int  # the selected checkpoint's step; 0 = the base model itself
    score: float  # its eval_score
    base_score: float  # the base model's eval_score (step 0)
    best_trained_step: int | None  # the best checkpoint after training began (kept or not)
    best_trained_score: float | None

    @property
    def beats_base(self) -> bool:
        return self.step > 0 and self.score > self.base_score

    def describe(self) -> str:
        """One plain sentence for the log, the model card and the pipeline summary."""
        if self.beats_base:
            return (
                f"selected step {self.step}: eval_score {self.score:.4f} vs the base model's {self.base_score:.4f} "
                f"({self.score - self.base_score:+.4f})"
            )
        trained = (
            f"best trained {self.best_trained_score:.4f} at step {self.best_trained_step}"
            if self.best_trained_step is not None
            else "no trained checkpoint was scored"
        )
        return (
            f"NO trained checkpoint beats the base model on the selection suite (base {self.base_score:.4f}, "
            f"{trained}): the selected model is the base model (step 0), unchanged"
        )


def selection(run_dir: Path, checkpoint: Path | None = None) -> Selection | None:
    """Selected checkpoint vs base from a run's `train_log.jsonl`; None when the base was not scored."""
    log_path = Path(run_dir) / LOG_FILE
    if not log_path.is_file():
        return None
    evals = {}
    for line in log_path.read_text().splitlines():
        record = json.loads(line) if line.strip() else {}
        if SCORE in record and "step" in record:
            evals[int(record["step"])] = float(record[SCORE])
    if 0 not in evals:
        return None
    step = load_trainer_state(checkpoint or best_checkpoint(Path(run_dir)))["step"]
    trained = {s: v for s, v in evals.items() if s > 0}
    best = max(trained, key=lambda s: (trained[s], -s)) if trained else None
    return Selection(
        step=step,
        score=evals.get(step, float("nan")),
        base_score=evals[0],
        best_trained_step=best,
        best_trained_score=trained.get(best) if best is not None else None,
    )
