"""`MineConfig`: every setting of `rtrain mine`, validated with all problems reported at once.

Names shared with ``sentence_transformers.util.mine_hard_negatives`` mean the same thing there:

* ``range_min`` / ``range_max``: the rank window. The search returns the query's ``range_max`` most
  similar candidates (plus room for its positives and its own text); from those, positives, the
  query's text and filtered candidates are dropped, the first ``range_min`` survivors are skipped
  and the next ``num_negatives`` are taken. ``range_max: null`` derives it like sentence-transformers:
  ``range_min + num_negatives + max_positives``, or ``range_min + 10 * num_negatives + max_positives``
  when a score filter is set.
* ``relative_margin``: drop a candidate scoring above ``pos_score - |pos_score| * relative_margin``
  (0.05 = keep negatives below 95% of the positive's score: NV-Retriever's TopK-PercPos).
* ``absolute_margin``: drop a candidate when ``score + absolute_margin > pos_score``.
* ``max_score`` / ``min_score``: drop candidates scoring above / below these.
* ``num_negatives``, ``sampling_strategy`` (``top`` or ``random`` within the window), ``batch_size``
  (encoding batch) and ``faiss_batch_size`` (queries per search call).

With several positives for one query text (several rows), every one of them is excluded and the
margins use the lowest positive score, as sentence-transformers does. Defaults differ from
sentence-transformers in one place: ``relative_margin`` is 0.05 here (None there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from rtrain.config.strict import StrictModel

DEFAULT_CACHE_DIR = "~/.cache/rtrain/embeddings"
CACHE_ENV = "RTRAIN_EMBED_CACHE"


class MineConfig(StrictModel):
    """Settings of one hard-negative mining run (`rtrain mine`, pipeline stage `mine`)."""

    # -- model ---------------------------------------------------------------------------------
    model: str = Field(
        min_length=1,
        description="Any model rtrain eval loads: pkg://module/subdir, an exported sentence-transformers "
        "folder, an rtrain run dir or checkpoint, or a Hugging Face model folder.",
    )
    pooling: Literal["mean", "cls", "last_token"] | None = Field(
        None, description="Pooling for Hugging Face folders and pkg:// models (default mean)."
    )
    query_prefix: str | None = Field(None, description="Replaces the model's query prefix (None keeps it).")
    passage_prefix: str | None = Field(None, description="Replaces the model's passage prefix (None keeps it).")

    # -- selection (sentence-transformers names) ---------------------------------------------
    num_negatives: int = Field(3, ge=1, description="Negatives per row.")
    range_min: int = Field(0, ge=0, description="Skip this many best-ranked candidates.")
    range_max: int | None = Field(None, ge=1, description="Never use candidates ranked at or below this.")
    relative_margin: float | None = Field(0.05, ge=0.0, le=1.0)
    absolute_margin: float | None = Field(None, ge=-2.0, le=2.0)
    max_score: float | None = Field(None, ge=-1.0, le=1.0)
    min_score: float | None = Field(None, ge=-1.0, le=1.0)
    sampling_strategy: Literal["top", "random"] = "top"
    seed: int = Field(0, description="Seed of sampling_strategy=random and of the IVF training sample.")
    same_language: Literal["none", "query", "positive"] = Field(
        "none",
        description="Only mine negatives in the row's query_lang ('query') or doc_lang ('positive'); "
        "each language then gets its own index, so ranks count same-language candidates only.",
    )

    # -- candidate pool ------------------------------------------------------------------------
    corpus: list[str] = Field(
        default_factory=list,
        description="Extra candidate files (positives of all rows are always candidates): .txt (one text a "
        "line), .jsonl/.parquet with a text column, or pair files (their positives).",
    )
    corpus_column: str | None = Field(
        None, description="Text column of corpus files; default 'positive' in pair files, else 'text'."
    )
    corpus_lang_column: str | None = Field(
        None, description="Language column of corpus files; default 'doc_lang' in pair files, else 'lang' if present."
    )

    # -- search --------------------------------------------------------------------------------
    index: Literal["auto", "flat", "ivf", "hnsw"] = Field(
        "auto",
        description="auto: exact IndexFlatIP up to flat_max_pool candidates; above, IVF when there are more "
        "than 4 sqrt(pool) queries (for fewer, IVF's training and assignment cost more than exact search).",
    )
    flat_max_pool: int = Field(50_000, ge=1, description="Largest pool (per language) searched exactly by index=auto.")
    ivf_nlist: int | None = Field(None, ge=1, description="IVF lists; default about sqrt(pool size).")
    ivf_nprobe: int = Field(16, ge=1, description="IVF lists searched per query (nlist = exact).")
    hnsw_m: int = Field(32, ge=4, description="HNSW neighbours per node.")
    hnsw_ef_construction: int = Field(80, ge=8)
    hnsw_ef_search: int = Field(128, ge=8, description="HNSW search breadth (raised to the candidates needed).")
    faiss_batch_size: int = Field(4096, ge=1, description="Queries per faiss search call.")

    # -- embedding -----------------------------------------------------------------------------
    batch_size: int = Field(64, ge=1, description="Encoding batch size.")
    engine: Literal["auto", "local", "ray"] = Field(
        "auto", description="auto: Ray Data when at least ray_threshold texts need encoding, else in-process."
    )
    ray_threshold: int = Field(50_000, ge=1)
    ray_workers: int = Field(2, ge=1, description="Model replicas of the Ray Data job.")
    ray_use_gpu: bool = Field(False, description="One GPU per Ray replica.")
    ray_cpus_per_worker: float = Field(1.0, gt=0.0, description="CPUs each Ray replica reserves.")
    device: str = Field("auto", description="Device of in-process encoding: auto (cuda if available), cpu, cuda:0 ...")
    cache: bool = Field(True, description="Keep embeddings on disk, keyed by model and text, across runs.")
    cache_dir: str | None = Field(None, description=f"Embedding cache; default ${CACHE_ENV} or {DEFAULT_CACHE_DIR}.")
    shard_size: int = Field(50_000, ge=1, description="Embeddings per cache shard file.")
    show_progress: bool = True

    @model_validator(mode="after")
    def _check_window(self) -> MineConfig:
        if self.range_max is not None:
            if self.range_min >= self.range_max:
                raise ValueError(
                    f"range_min={self.range_min} must be below range_max={self.range_max}: "
                    f"raise range_max or lower range_min"
                )
            if self.num_negatives > self.range_max - self.range_min:
                raise ValueError(
                    f"num_negatives={self.num_negatives} does not fit the rank window "
                    f"[range_min={self.range_min}, range_max={self.range_max}) of {self.range_max - self.range_min} "
                    f"candidates: lower num_negatives or widen the window"
                )
        if self.max_score is not None and self.min_score is not None and self.min_score > self.max_score:
            raise ValueError(f"min_score={self.min_score} is above max_score={self.max_score}: no candidate can pass")
        return self

    @property
    def filters_set(self) -> bool:
        """Whether any score filter is on (decides the derived range_max, as in sentence-transformers)."""
        return any(v is not None for v in (self.relative_margin, self.absolute_margin, self.max_score, self.min_score))

    def window(self, max_positives: int) -> tuple[int, int]:
        """(range_min, range_max) with range_max derived from `max_positives` when it is not set."""
        if self.range_max is not None:
            return self.range_min, self.range_max
        per = 10 * self.num_negatives if self.filters_set else self.num_negatives
        return self.range_min, self.range_min + per + max_positives

    def cache_root(self) -> Path:
        """The embedding cache folder (config, then $RTRAIN_EMBED_CACHE, then ~/.cache/rtrain/embeddings)."""
        return Path(self.cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR).expanduser()
