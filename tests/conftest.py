"""Shared fixtures: a tiny encoder, toy pair files, offline environment, one local Ray per session."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tiny import make_tiny_model, pair_rows, write_jsonl

FAKE_WANDB_KEY = "0123456789abcdef0123456789abcdef01234567"  # set for every test: it must never reach a file
os.environ["WANDB_API_KEY"] = FAKE_WANDB_KEY
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(pair_rows(256, negatives=2), tmp_path_factory.mktemp("pairs") / "train.jsonl")


@pytest.fixture(scope="session")
def ray_local():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=True, configure_logging=False)
    yield ray
    ray.shutdown()


def job_dict(model_path: Path, pairs: Path, storage: Path, **sections) -> dict:
    """A small training job on the tiny model; keyword args replace whole sections' keys."""
    job = {
        "name": "test",
        "model": {"name_or_path": str(model_path), "query_max_length": 32, "passage_max_length": 32},
        "lora": {"r": 4, "alpha": 8},
        "data": {"train_files": [str(pairs)], "tokenize_batch_size": 64},
        "loss": {"negatives_per_query": 1},
        "train": {"batch_size_per_worker": 8, "learning_rate": 1e-3, "log_every_steps": 4, "checkpoint_every_steps": 8},
        "scaling": {"num_workers": 2, "cpus_per_worker": 0.5},
        "logging": {"wandb": False},
        "output": {"storage_path": str(storage), "name": "run"},
    }
    for section, values in sections.items():
        job.setdefault(section, {}).update(values)
    return job


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open an internet socket (unix sockets stay allowed; Ray needs TCP, so opt in)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"test blocked a network connection to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like `no_network`, but loopback stays reachable: for fake servers that tests run in a thread."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) and address else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK_HOSTS:
            raise OSError(f"test blocked a non-loopback network connection to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
