"""Encode large text sets as a Ray Data job: model replicas in an actor pool, over every node of a cluster.

`RayDataEncoder` implements the `TextEncoder` protocol, so any evaluator (and `rtrain eval --ray-workers N`)
can use it instead of a local model. Each actor loads the model once with `load_encoder`, so every model
argument `rtrain eval` accepts works here too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rtrain.eval.protocol import EncodeKind


class _EncodeActor:
    """One model replica: a batch of {index, text} rows -> the same rows with an embedding column."""

    def __init__(self, spec: str, kind: EncodeKind, pooling: str | None, device: str, threads: int | None) -> None:
        import torch

        from rtrain.eval.encoders import load_encoder

        if threads:
            torch.set_num_threads(threads)
        self.encoder = load_encoder(spec, pooling=pooling, device=device)
        self.kind = kind

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        emb = self.encoder.encode(list(batch["text"]), self.kind, batch_size=len(batch["text"]))  # (batch, dim)
        return {"index": batch["index"], "embedding": emb}


class RayDataEncoder:
    """`encode(texts, kind)` spread over `num_workers` model replicas with Ray Data; rows come back in order."""

    def __init__(
        self,
        spec: str,
        num_workers: int = 2,
        *,
        pooling: str | None = None,
        use_gpu: bool = False,
        cpus_per_worker: float = 1.0,
        threads_per_worker: int | None = 1,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers={num_workers}: use at least 1 encoder replica")
        self.spec, self.num_workers, self.pooling = spec, num_workers, pooling
        self.use_gpu, self.cpus, self.threads = use_gpu, cpus_per_worker, threads_per_worker

    def encode(
        self, texts: list[str], kind: EncodeKind, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        import ray

        if not texts:
            raise ValueError(f"encode() got no {kind} texts: pass at least one")
        if not ray.is_initialized():
            ray.init(configure_logging=False)
        ds = ray.data.from_items([{"index": i, "text": t} for i, t in enumerate(texts)])
        out = ds.map_batches(
            _EncodeActor,
            fn_constructor_args=(self.spec, kind, self.pooling, "cuda" if self.use_gpu else "cpu", self.threads),
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.num_workers),
            num_gpus=1 if self.use_gpu else 0,
            num_cpus=self.cpus,
        )
        index_parts, emb_parts = [], []
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            index_parts.append(batch["index"])
            emb_parts.append(np.stack(batch["embedding"]) if batch["embedding"].dtype == object else batch["embedding"])
        index = np.concatenate(index_parts)  # (n,)
        emb = np.concatenate(emb_parts).astype(np.float32)  # (n, dim), in arrival order
        if len(index) != len(texts):
            raise RuntimeError(f"Ray Data returned {len(index)} embeddings for {len(texts)} texts")
        ordered = np.empty_like(emb)
        ordered[index] = emb
        return ordered
