"""faiss search for mining: exact for small pools, IVF or HNSW for large ones, always in bounded memory.

The pool goes into the index chunk by chunk (from memory-mapped cache shards), and queries are
searched ``faiss_batch_size`` at a time, so besides the index itself (pool x dim floats) memory
holds one chunk of vectors and one ``(batch, k)`` result block: never a queries x pool matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import faiss
import numpy as np
from tqdm.auto import tqdm

from rtrain.mining.cache import iter_blocks
from rtrain.mining.config import MineConfig

ADD_CHUNK = 16_384  # pool vectors added per call (IVF assigns each chunk: a chunk x nlist block)
TRAIN_PER_LIST = 64  # IVF k-means training points per list (faiss warns below 39)


class VectorSource(Protocol):
    """Unit-norm float32 vectors addressable by row: a cached text list, an array, a subset."""

    def __len__(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def take(self, idx: np.ndarray) -> np.ndarray: ...

    def chunks(self, size: int) -> Iterator[np.ndarray]: ...


class ArraySource:
    """A ``(n, dim)`` array (or ``np.memmap``) as a :class:`VectorSource`."""

    def __init__(self, array: np.ndarray) -> None:
        if array.ndim != 2:
            raise ValueError(f"vectors must be (n, dim), got shape {array.shape}")
        self.array = array

    def __len__(self) -> int:
        return self.array.shape[0]

    @property
    def dim(self) -> int:
        return self.array.shape[1]

    def take(self, idx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.array[np.asarray(idx, dtype=np.int64)], dtype=np.float32)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        for block in iter_blocks(len(self), size):
            yield np.ascontiguousarray(self.array[block], dtype=np.float32)


@dataclass
class IndexInfo:
    """What was built: the index kind and its parameters (for the manifest)."""

    kind: str
    size: int
    nlist: int | None = None
    nprobe: int | None = None
    hnsw_m: int | None = None
    ef_search: int | None = None


def index_kind(pool_size: int, n_queries: int, cfg: MineConfig) -> str:
    """The index `cfg.index` asks for. `auto`: exact up to ``flat_max_pool`` vectors; above, IVF only when
    there are more than 4 sqrt(pool) queries, since training IVF and assigning every pool vector to one
    of ~sqrt(pool) lists costs about as much as searching ~sqrt(pool) queries exactly."""
    if cfg.index != "auto":
        return cfg.index
    if pool_size <= cfg.flat_max_pool or n_queries <= 4 * math.sqrt(pool_size):
        return "flat"
    return "ivf"


def build_index(
    pool: VectorSource, cfg: MineConfig, k: int, n_queries: int, desc: str = "index"
) -> tuple[faiss.Index, IndexInfo]:
    """An inner-product index over `pool`, added chunk by chunk, for `n_queries` searches of depth `k`."""
    n, dim = len(pool), pool.dim
    kind = index_kind(n, n_queries, cfg)
    info = IndexInfo(kind=kind, size=n)
    if kind == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.hnsw_ef_construction
        info.hnsw_m, info.ef_search = cfg.hnsw_m, max(cfg.hnsw_ef_search, k)
        index.hnsw.efSearch = info.ef_search
    else:
        nlist = cfg.ivf_nlist if cfg.ivf_nlist is not None else max(1, round(math.sqrt(n)))
        nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))  # faiss needs >= 39 training points per list
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(cfg.seed)
        sample = np.sort(rng.choice(n, size=min(n, TRAIN_PER_LIST * nlist), replace=False))
        index.train(pool.take(sample))  # (n_train, dim)
        index.nprobe = min(cfg.ivf_nprobe, nlist)
        info.nlist, info.nprobe = nlist, index.nprobe
    bar = tqdm(total=n, desc=f"{desc} ({kind})", unit="vec", disable=not cfg.show_progress)
    for chunk in pool.chunks(ADD_CHUNK):
        index.add(chunk)  # (<=ADD_CHUNK, dim)
        bar.update(len(chunk))
    bar.close()
    return index, info


def search_batches(
    index: faiss.Index, queries: VectorSource, k: int, cfg: MineConfig, desc: str = "search"
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """(rows, scores, ids) per batch of ``faiss_batch_size`` queries: ``(b, k)`` each, best first.

    ``k`` is capped at the index size; slots faiss cannot fill (IVF, HNSW) have id -1.
    """
    k = max(1, min(k, index.ntotal))
    bar = tqdm(total=len(queries), desc=desc, unit="query", disable=not cfg.show_progress)
    try:
        for block in iter_blocks(len(queries), cfg.faiss_batch_size):
            q = queries.take(np.arange(block.start, block.stop))  # (b, dim)
            scores, ids = index.search(q, k)  # (b, k), (b, k)
            bar.update(block.stop - block.start)
            yield block, scores, ids
    finally:
        bar.close()
