"""On-disk embedding cache keyed by (model key, kind, text), shared by every mining run of a model.

Layout: ``<root>/<model key>/<kind>/<shard>.npy`` (float32 ``(rows, dim)``) next to
``<shard>.parquet`` (one ``hash`` column: blake2b-128 of each row's text, same order). The
Parquet file is written last, by rename, so a shard without it is incomplete and ignored; shard
names are unique per writer, so concurrent runs only ever add files.

A :class:`CacheView` is an immutable snapshot of one kind's shards: positions it returns stay valid
for its :meth:`~CacheView.take`, whatever other runs add meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HASH_TYPE = pa.binary(16)


def text_hashes(texts: list[str]) -> pa.Array:
    """blake2b-128 digests of the UTF-8 texts, as an Arrow binary array."""
    return pa.array([hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts], type=HASH_TYPE)


@dataclass(frozen=True)
class CacheView:
    """A snapshot of one kind's complete shards: their files, row offsets and concatenated hashes."""

    files: tuple[Path, ...]
    offsets: np.ndarray  # (n_shards + 1,) first global position of each shard, then the total
    hashes: pa.Array  # (total,) text hashes in global position order
    dim: int | None

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def lookup(self, hashes: pa.Array) -> np.ndarray:
        """Global positions of `hashes` in this view, -1 where absent. Shape (len(hashes),)."""
        if len(self) == 0 or len(hashes) == 0:
            return np.full(len(hashes), -1, dtype=np.int64)
        found = pc.index_in(hashes, value_set=self.hashes)
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """Embeddings at global `positions` (any order, repeats allowed), read from memory-mapped shards."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.dim is None:
            raise ValueError("the embedding cache view is empty: nothing to take")
        if positions.size and (positions.min() < 0 or positions.max() >= len(self)):
            raise IndexError(f"cache positions outside [0, {len(self)}): min {positions.min()}, max {positions.max()}")
        out = np.empty((positions.size, self.dim), dtype=np.float32)  # (n, dim)
        shard_of = np.searchsorted(self.offsets, positions, side="right") - 1  # (n,)
        for shard in np.unique(shard_of):
            sel = np.nonzero(shard_of == shard)[0]
            data = np.load(self.files[shard], mmap_mode="r")  # (rows, dim), not read until indexed
            out[sel] = data[positions[sel] - self.offsets[shard]]
        return out


class EmbeddingCache:
    """Embeddings of one model (``model_key``) under ``root``; see the module docstring for the layout."""

    def __init__(self, root: Path, model_key: str, describe: dict | None = None) -> None:
        self.dir = Path(root).expanduser() / model_key
        self.model_key = model_key
        self.dir.mkdir(parents=True, exist_ok=True)
        info = self.dir / "model.json"
        if describe is not None and not info.exists():
            info.write_text(json.dumps(describe, indent=2, default=str))

    def view(self, kind: str) -> CacheView:
        """A snapshot of `kind`'s complete shards (sorted by name, so older shards come first)."""
        folder = self.dir / kind
        files: list[Path] = []
        hash_parts: list[pa.Array] = []
        sizes = [0]
        dim: int | None = None
        for index_file in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
            npy = index_file.with_suffix(".npy")
            if not npy.is_file():
                continue
            hashes = pq.read_table(index_file).column("hash").combine_chunks().cast(HASH_TYPE)
            shape = np.load(npy, mmap_mode="r").shape  # (rows, dim)
            if len(shape) != 2 or shape[0] != len(hashes):
                raise ValueError(
                    f"embedding cache shard {npy} holds shape {shape} for {len(hashes)} hashes; "
                    f"delete {folder} to rebuild it"
                )
            if dim is not None and shape[1] != dim:
                raise ValueError(f"embedding cache {folder} mixes dims {dim} and {shape[1]} ({npy}); delete {folder}")
            dim = shape[1]
            files.append(npy)
            hash_parts.append(hashes)
            sizes.append(shape[0])
        hashes_all = pa.concat_arrays(hash_parts) if hash_parts else pa.array([], type=HASH_TYPE)
        return CacheView(tuple(files), np.cumsum(sizes), hashes_all, dim)

    def add(self, kind: str, texts: list[str], emb: np.ndarray) -> None:
        """Store embeddings ``(len(texts), dim)`` of `texts` as one new shard (npy first, index last)."""
        if emb.ndim != 2 or emb.shape[0] != len(texts):
            raise ValueError(f"cache add: {emb.shape} embeddings for {len(texts)} texts")
        folder = self.dir / kind
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp_npy, tmp_idx = folder / f".{name}.npy.tmp", folder / f".{name}.parquet.tmp"
        with tmp_npy.open("wb") as fh:
            np.save(fh, np.ascontiguousarray(emb, dtype=np.float32))
        os.replace(tmp_npy, folder / f"{name}.npy")
        pq.write_table(pa.table({"hash": text_hashes(texts)}), tmp_idx)
        os.replace(tmp_idx, folder / f"{name}.parquet")


def iter_blocks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of ``range(n)`` of at most `size` items."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class RowSource(Protocol):
    """Float32 rows addressable by position: a cache view, or any vector source of the search stage."""

    @property
    def dim(self) -> int | None: ...

    def take(self, idx: np.ndarray) -> np.ndarray: ...


class SubsetSource:
    """Rows `members` of another source, renumbered 0..len(members)-1: a text list's embeddings in a
    cache view (members = the texts' positions), or one language's share of a pool."""

    def __init__(self, inner: RowSource, members: np.ndarray) -> None:
        self.inner = inner
        self.members = np.asarray(members, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def dim(self) -> int:
        if self.inner.dim is None:
            raise ValueError("no embeddings: the text list was empty")
        return self.inner.dim

    def take(self, idx: np.ndarray) -> np.ndarray:
        """Rows `idx` of the subset, ``(len(idx), dim)`` float32."""
        return self.inner.take(self.members[np.asarray(idx, dtype=np.int64)])

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """The whole subset in order, ``size`` rows at a time (each ``(<=size, dim)``)."""
        for block in iter_blocks(len(self), size):
            yield self.inner.take(self.members[block])
