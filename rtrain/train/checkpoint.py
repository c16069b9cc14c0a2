"""Checkpoint layout and lookup.

A checkpoint folder (one per reported step, `checkpoint_<step>` under the run dir) holds:
- `trainer_state.json`: step, epoch and data position (micro-batches consumed in the epoch)
- `metrics.json`: the metrics reported with it
- `job.yaml`: the resolved job config
- `adapter/`: the PEFT LoRA adapter (safetensors), or `model/` when fine-tuning every weight
- `deepspeed/` (DeepSpeed ZeRO shards, one file per rank) or `torch_engine.pt`: optimizer and
  scheduler state, for resume

With an eval suite, `checkpoint_0000000` is the base model (scored before the first step, `eval.baseline`):
selection by `eval_score` then keeps the base when no trained checkpoint beats it, and `selection()`
says so from the run's `train_log.jsonl`, which holds every eval (kept checkpoints or not).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtrain.config.load import dump_yaml
from rtrain.config.schema import JobConfig

LOG_FILE = "train_log.jsonl"  # in the run dir: one line per log step and per eval, written by rank 0
STATE_FILE = "trainer_state.json"
METRICS_FILE = "metrics.json"
SCORE = "eval_score"  # mean of the eval suite's task main scores: checkpoint selection and Tune use it


def save_checkpoint(
    engine: Any, cfg: JobConfig, state: dict[str, int], metrics: dict[str, float], directory: Path, rank: int
) -> bool:
    """Write this rank's share of a checkpoint into `directory`; True if it wrote any file.

    Every rank must call this: DeepSpeed saves a shard per rank, and under ZeRO-3 the weights are
    gathered collectively before rank 0 writes the adapter.
    """
    engine.save(directory)
    gather = getattr(engine, "gathered_parameters", contextlib.nullcontext)
    with gather():
        if rank == 0:
            backbone = engine.raw.backbone
            backbone.save_pretrained(str(directory / ("adapter" if cfg.lora.enabled else "model")))
    if rank == 0:
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2))
        (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        (directory / "job.yaml").write_text(dump_yaml(cfg))
    return any(directory.iterdir())


def load_trainer_state(directory: Path) -> dict[str, int]:
    """The trainer state stored in a checkpoint folder."""
    path = directory / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not an rtrain checkpoint: {STATE_FILE} is missing")
    return json.loads(path.read_text())


def latest_checkpoint(run_or_checkpoint: Path) -> Path:
    """The checkpoint folder with the highest step in a run dir (or the folder itself if it is one)."""
    path = Path(run_or_checkpoint)
    if (path / STATE_FILE).is_file():
        return path
    candidates = [p.parent for p in path.glob(f"checkpoint_*/{STATE_FILE}")]
    if not candidates:
        raise FileNotFoundError(
            f"{path} holds no rtrain checkpoint (no checkpoint_*/{STATE_FILE}); pass a run dir or a checkpoint folder"
        )
    return max(candidates, key=lambda p: load_trainer_state(p)["step"])


def best_checkpoint(run_or_checkpoint: Path) -> Path:
    """The checkpoint with the highest `eval_score` when training evaluated, else the latest one."""
    path = Path(run_or_checkpoint)
    if (path / STATE_FILE).is_file():
        return path
    scored = []
    for state in path.glob(f"checkpoint_*/{STATE_FILE}"):
        metrics_file = state.parent / METRICS_FILE
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        if SCORE in metrics:
            scored.append((metrics[SCORE], -load_trainer_state(state.parent)["step"], state.parent))
    return max(scored)[2] if scored else latest_checkpoint(path)  # a tie goes to the earlier step (the base)


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
