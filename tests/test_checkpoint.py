"""rtrain.checkpoint without Ray: a checkpoint written by the torch engine reads back into the same state,
and a `torch_engine.pt` holding any other pickled object is refused on resume without running it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from rtrain.checkpoint import (
    ADAPTER_DIR,
    JOB_FILE,
    METRICS_FILE,
    STATE_FILE,
    TrainerState,
    best_checkpoint,
    checkpoint_name,
    engine_state_path,
    holds_checkpoint,
    latest_checkpoint,
    load_job,
    load_metrics,
    restore_checkpoint,
    save_checkpoint,
)
from rtrain.config import resolve_job
from rtrain.config.schema import JobConfig
from rtrain.models.encoder import build_encoder
from rtrain.train.engine import TorchEngine, trainable_parameters

from tiny import job_dict


def _job(tiny_model: Path, tmp_path: Path) -> JobConfig:
    return resolve_job(
        job_dict(tiny_model, tmp_path / "unused.jsonl", tmp_path, train={"backend": "ddp"}, scaling={"num_workers": 1})
    )


def _engine(cfg: JobConfig, seed: int) -> TorchEngine:
    torch.manual_seed(seed)  # a different seed gives different LoRA A matrices: restore must overwrite them
    encoder, _ = build_encoder(cfg.model, cfg.lora)
    return TorchEngine(encoder, cfg, total_steps=10, calls_per_step=1)


def test_torch_engine_checkpoint_round_trip(tiny_model: Path, tmp_path: Path) -> None:
    cfg = _job(tiny_model, tmp_path)
    engine = _engine(cfg, seed=0)
    for _ in range(2):  # two AdamW steps: moments and step counts to restore, LoRA B off zero
        engine.backward(sum(p.sum() for p in trainable_parameters(engine.raw)))
        assert engine.step()
    directory = tmp_path / "run" / checkpoint_name(2)
    directory.mkdir(parents=True)
    metrics = {"step": 2, "loss": 0.5}
    assert save_checkpoint(engine, cfg, TrainerState(step=2, batches_done=5), metrics, directory, rank=0)
    for name in (STATE_FILE, METRICS_FILE, JOB_FILE):
        assert (directory / name).is_file(), name
    assert (directory / ADAPTER_DIR / "adapter_model.safetensors").is_file()
    assert engine_state_path(directory, "ddp").is_file()

    fresh = _engine(cfg, seed=1)
    assert restore_checkpoint(fresh, cfg, directory) == TrainerState(step=2, batches_done=5)
    want = dict(engine.raw.named_parameters())
    for name, param in fresh.raw.named_parameters():
        if param.requires_grad:
            torch.testing.assert_close(param, want[name], rtol=0, atol=0)
    assert fresh.calls == engine.calls and fresh.lr() == engine.lr()
    assert fresh.scheduler.state_dict() == engine.scheduler.state_dict()
    got, ref = fresh.optimizer.state_dict()["state"], engine.optimizer.state_dict()["state"]
    assert got.keys() == ref.keys()
    for index, values in ref.items():
        for key, value in values.items():
            torch.testing.assert_close(got[index][key], value, rtol=0, atol=0)

    assert load_job(directory) == cfg and load_metrics(directory) == metrics
    run = directory.parent
    assert holds_checkpoint(run) and holds_checkpoint(directory) and not holds_checkpoint(tmp_path)
    assert latest_checkpoint(run) == directory and best_checkpoint(run) == directory


def _run_payload(marker: str) -> None:
    Path(marker).write_text("the pickled payload ran")


class _Payload:
    """Unpickling this calls `_run_payload`: what a crafted checkpoint file could do with any function."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return _run_payload, (self.marker,)


def test_resume_refuses_a_torch_engine_file_with_a_pickled_object(tiny_model: Path, tmp_path: Path) -> None:
    cfg = _job(tiny_model, tmp_path)
    directory = tmp_path / checkpoint_name(1)
    directory.mkdir()
    (directory / STATE_FILE).write_text('{"step": 1, "batches_done": 1}')
    marker = tmp_path / "pwned"
    state_file = engine_state_path(directory, cfg.train.backend)
    torch.save({"trainable": {}, "optimizer": _Payload(marker), "scheduler": {}, "calls": 1}, state_file)
    engine = TorchEngine(torch.nn.Linear(2, 2), cfg, total_steps=1, calls_per_step=1)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        restore_checkpoint(engine, cfg, directory)
    assert not marker.exists()
    torch.load(state_file, weights_only=False)  # the payload is live: an unsafe load would have run it
    assert marker.read_text() == "the pickled payload ran"
