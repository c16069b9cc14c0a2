"""`mine()`: pair files in, the same rows with `negatives`, `pos_score` and `neg_scores` out.

Steps: read and validate the rows; build the candidate pool (extra corpus texts, then every row's
positive, de-duplicated by text); embed unique queries and the pool through the cache; score each
row's positive; per language group (one group unless ``same_language``), index the pool, search
the queries in batches and select negatives; write one Parquet file per input plus ``manifest.json``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtrain.eval.protocol import TextEncoder
from rtrain.mining.cache import EmbeddingCache, SubsetSource, iter_blocks
from rtrain.mining.config import MineConfig
from rtrain.mining.embed import Embedder, model_key
from rtrain.mining.inputs import Corpus, MiningError, read_corpus, read_pair_files
from rtrain.mining.output import check_out, clear_previous, output_names, write_manifest, write_pairs
from rtrain.mining.search import VectorSource, build_index, search_batches
from rtrain.mining.select import SelectStats, select_negatives

logger = logging.getLogger(__name__)


@dataclass
class Problem:
    """Rows indexed against the candidate pool and the unique query texts."""

    rows: list[dict[str, Any]]
    pool_texts: list[str]
    pool_langs: list[str | None]
    query_texts: list[str]
    row_query: np.ndarray  # (rows,) query id of each row
    row_positive: np.ndarray  # (rows,) pool id of each row's positive
    positives: np.ndarray  # (queries, P) pool ids of each query's positives, -1 padded
    query_in_pool: np.ndarray  # (queries,) pool id of the query's own text, -1 if absent

    @classmethod
    def build(cls, rows: list[dict[str, Any]], corpus: Corpus) -> Problem:
        """Pool = corpus texts, then positives, unique by text (first language seen wins over none)."""
        pool_id: dict[str, int] = {}
        texts: list[str] = []
        langs: list[str | None] = []
        for text, lang in [*zip(corpus.texts, corpus.langs), *((r["positive"], r["doc_lang"]) for r in rows)]:
            at = pool_id.get(text)
            if at is None:
                pool_id[text] = len(texts)
                texts.append(text)
                langs.append(lang)
            elif langs[at] is None:
                langs[at] = lang
        query_id: dict[str, int] = {}
        for row in rows:
            query_id.setdefault(row["query"], len(query_id))
        row_query = np.array([query_id[r["query"]] for r in rows], dtype=np.int64)
        row_positive = np.array([pool_id[r["positive"]] for r in rows], dtype=np.int64)
        per_query: list[list[int]] = [[] for _ in query_id]
        for q, p in zip(row_query.tolist(), row_positive.tolist()):
            if p not in per_query[q]:
                per_query[q].append(p)
        positives = np.full((len(query_id), max(len(p) for p in per_query)), -1, dtype=np.int64)
        for q, ps in enumerate(per_query):
            positives[q, : len(ps)] = ps
        query_in_pool = np.array([pool_id.get(t, -1) for t in query_id], dtype=np.int64)
        return cls(rows, texts, langs, list(query_id), row_query, row_positive, positives, query_in_pool)


@dataclass
class Mined:
    """Selected (pool ids, scores) per (query, language) key, and what the search did."""

    row_key: np.ndarray  # (rows,) key of each row
    chosen: list[tuple[np.ndarray, np.ndarray]]
    window: tuple[int, int]
    stats: SelectStats = field(default_factory=SelectStats)
    indexes: list[dict[str, Any]] = field(default_factory=list)


def positive_scores(p: Problem, queries: VectorSource, pool: VectorSource) -> tuple[np.ndarray, np.ndarray]:
    """Each row's positive score ``(rows,)`` and each query's lowest positive score ``(queries,)``."""
    score = np.empty(len(p.rows), dtype=np.float32)  # (rows,)
    for block in iter_blocks(len(p.rows), 8192):
        q = queries.take(p.row_query[block])  # (b, dim)
        score[block] = (q * pool.take(p.row_positive[block])).sum(axis=1)
    floor = np.full(len(p.query_texts), np.inf, dtype=np.float32)  # (queries,)
    np.minimum.at(floor, p.row_query, score)
    return score, floor


def search_and_select(
    p: Problem, cfg: MineConfig, queries: VectorSource, pool: VectorSource, floor: np.ndarray
) -> Mined:
    """Per target language (one group without same_language): index its pool, search, select."""
    side = {"query": "query_lang", "positive": "doc_lang"}.get(cfg.same_language)
    key_id: dict[tuple[int, str | None], int] = {}
    row_key = np.array(
        [
            key_id.setdefault((q, row[side] if side else None), len(key_id))
            for q, row in zip(p.row_query.tolist(), p.rows)
        ],
        dtype=np.int64,
    )
    key_query = np.array([q for q, _ in key_id], dtype=np.int64)  # (keys,) in key order (dicts keep it)
    groups: dict[str | None, list[int]] = {}
    for (_, lang), k in key_id.items():
        groups.setdefault(lang, []).append(k)
    empty = (np.empty(0, np.int64), np.empty(0, np.float32))
    result = Mined(row_key, [empty] * len(key_id), cfg.window(p.positives.shape[1]))
    depth = result.window[1] + p.positives.shape[1] + 1  # room for the positives and the query's own text
    rng = np.random.default_rng(cfg.seed)
    pool_langs = np.array(p.pool_langs, dtype=object)
    for lang in sorted(groups, key=str):
        keys = np.array(groups[lang], dtype=np.int64)
        members = np.arange(len(p.pool_texts)) if lang is None else np.flatnonzero(pool_langs == lang)
        if len(members) == 0:
            result.indexes.append({"language": lang, "kind": None, "size": 0})
            continue
        label = "" if lang is None else f" [{lang}]"
        index, info = build_index(SubsetSource(pool, members), cfg, depth, len(keys), desc=f"index{label}")
        result.indexes.append({"language": lang, **vars(info)})
        for block, scores, local in search_batches(
            index, SubsetSource(queries, key_query[keys]), depth, cfg, desc=f"search{label}"
        ):
            ids = np.where(local >= 0, members[np.maximum(local, 0)], -1)  # (b, k) pool ids
            qs = key_query[keys[block]]  # (b,)
            picked = select_negatives(
                ids, scores, p.positives[qs], p.query_in_pool[qs], floor[qs], cfg, result.window, rng, result.stats
            )
            for k, pair in zip(keys[block].tolist(), picked):
                result.chosen[k] = pair
        del index
    return result


def mine(
    inputs: list[str],
    cfg: MineConfig,
    out: str | Path,
    *,
    encoder: TextEncoder | None = None,
    encoder_key: str | None = None,
) -> dict[str, Any]:
    """Mine hard negatives for the pair files / folders `inputs` into folder `out`; returns the manifest.

    `encoder` (with a cache key `encoder_key`) replaces loading ``cfg.model``.
    """
    if (encoder is None) != (encoder_key is None):
        raise ValueError("pass encoder and encoder_key together (the key names its embeddings in the cache)")
    out = Path(out)
    previous = check_out(out)  # before reading or loading anything; nothing is deleted until the rows are ready
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    files = read_pair_files(inputs)
    corpus = read_corpus(cfg.corpus, cfg.corpus_column, cfg.corpus_lang_column) if cfg.corpus else Corpus([], [], [])
    p = Problem.build([row for f in files for row in f.rows], corpus)
    if cfg.same_language != "none" and None in p.pool_langs:
        unknown = sum(lang is None for lang in p.pool_langs)
        raise MiningError(
            f"same_language={cfg.same_language}: {unknown} corpus texts have no language "
            f"(files {corpus.files}); set corpus_lang_column or same_language=none"
        )
    seconds["read"] = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="rtrain-mine-cache-") as scratch:
        root = cfg.cache_root() if cfg.cache else Path(scratch)
        key, describe = (encoder_key, {"encoder": type(encoder).__name__}) if encoder_key else model_key(cfg)
        embedder = Embedder(cfg, EmbeddingCache(root, key, describe), encoder)
        pool = embedder.embed(p.pool_texts, "document")
        queries = embedder.embed(p.query_texts, "query")
        if pool.dim != queries.dim:
            raise MiningError(
                f"model {cfg.model}: query embeddings have dim {queries.dim} but documents "
                f"{pool.dim}; the model must embed both kinds in one space"
            )
        seconds.update({f"embed_{k}": v for k, v in embedder.stats.seconds.items()})
        t0 = time.perf_counter()
        pos_score, floor = positive_scores(p, queries, pool)
        mined = search_and_select(p, cfg, queries, pool, floor)
        seconds["search"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    counts = {"short": 0, "without": 0, "total": 0}
    neg_sum = 0.0
    for row, k, score in zip(p.rows, mined.row_key.tolist(), pos_score.tolist()):
        ids, scores = mined.chosen[k]
        row.update(negatives=[p.pool_texts[i] for i in ids.tolist()], neg_scores=scores.tolist(), pos_score=score)
        counts["short"] += len(ids) < cfg.num_negatives
        counts["without"] += len(ids) == 0
        counts["total"] += len(ids)
        neg_sum += float(scores.sum())
    names = output_names([f.path for f in files])
    clear_previous(out, previous)
    out.mkdir(parents=True, exist_ok=True)
    for f, name in zip(files, names):
        write_pairs(out / name, f.rows)
    seconds["write"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    if counts["short"]:
        logger.warning(
            "%d of %d rows got fewer than num_negatives=%d negatives (%d got none): widen the window "
            "(range_max), loosen relative_margin / absolute_margin / max_score, or add a corpus",
            counts["short"],
            len(p.rows),
            cfg.num_negatives,
            counts["without"],
        )
    manifest = {
        "model": cfg.model if encoder is None else f"<given {type(encoder).__name__}>",
        "model_key": key,
        "engine": embedder.stats.engine,
        "settings": cfg.model_dump(mode="json"),
        "window": {"range_min": mined.window[0], "range_max": mined.window[1]},
        "inputs": [str(f.path) for f in files],
        "outputs": names,
        "corpus_files": corpus.files,
        "rows": len(p.rows),
        "unique_queries": len(p.query_texts),
        "pool": len(p.pool_texts),
        "max_positives_per_query": int(p.positives.shape[1]),
        "indexes": mined.indexes,
        "rows_short": counts["short"],
        "rows_without_negatives": counts["without"],
        "negatives": counts["total"],
        "removed": mined.stats.as_dict(),
        "mean_pos_score": float(pos_score.mean()),
        "mean_neg_score": neg_sum / counts["total"] if counts["total"] else None,
        "cache": {
            "dir": str(root) if cfg.cache else None,
            "texts": embedder.stats.texts,
            "encoded": embedder.stats.encoded,
        },
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
    write_manifest(out, manifest)
    return manifest
