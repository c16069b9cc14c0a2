"""Shared fixtures: a tiny encoder, toy pair files, offline environment, one local Ray per session."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tiny import FAKE_WANDB_KEY, make_tiny_model, pair_rows, write_jsonl

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
