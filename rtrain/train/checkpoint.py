"""Checkpoint layout and lookup.

A checkpoint folder (one per reported step, `checkpoint_<step>` under the run dir) holds:
- `trainer_state.json`: step, epoch and data position (micro-batches consumed in the epoch)
- `metrics.json`: the metrics reported with it
- `job.yaml`: the resolved job config
- `adapter/`: the PEFT LoRA adapter (safetensors), or `model/` when fine-tuning every weight
- `deepspeed/` (DeepSpeed ZeRO shards, one file per rank) or `torch_engine.pt`: optimizer and
  scheduler state, for resume
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from rtrain.config.load import dump_yaml
from rtrain.config.schema import JobConfig

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
            scored.append((metrics[SCORE], state.parent))
    return max(scored)[1] if scored else latest_checkpoint(path)
