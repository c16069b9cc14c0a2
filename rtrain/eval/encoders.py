"""Turn a model argument into a :class:`TextEncoder`, override its prefixes, and cache its embeddings.

``load_encoder`` accepts, in this order of detection:

* ``pkg://module/subdir``: a model shipped in a Python package -> ``EmbeddingModel.load``;
* an rtrain checkpoint folder, or a run dir holding one (``rtrain.checkpoint.holds_checkpoint``)
  -> ``rtrain.checkpoint.checkpoint_embedding_model`` (the run's best checkpoint, as exported);
* a folder holding ``modules.json``: an exported sentence-transformers model -> its own pipeline
  (pooling, normalisation, ``query`` / ``document`` prompts) via :class:`SentenceTransformerEncoder`;
* a folder holding ``config.json``: a Hugging Face model -> ``EmbeddingModel.load`` (mean pooling
  unless ``pooling`` is given, L2-normalised).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from rtrain.checkpoint import CHECKPOINT_PREFIX, STATE_FILE, checkpoint_embedding_model, holds_checkpoint
from rtrain.eval.protocol import EncodeKind, TextEncoder, check_embeddings

logger = logging.getLogger(__name__)

PKG_SCHEME = "pkg://"
MODEL_KINDS = (
    "an exported sentence-transformers folder, an rtrain run dir or checkpoint folder, "
    "a Hugging Face model folder, or pkg://module/subdir"
)


class SentenceTransformerEncoder:
    """A sentence-transformers model as a :class:`TextEncoder`; ``kind`` picks its prompt.

    ``prompts`` maps kind -> prefix string; by default the model's own ``query`` and ``document``
    (or ``passage``) prompts. ``lengths`` (query, passage tokens) replaces the model's one ``max_seq_length``
    while this encoder encodes.
    """

    def __init__(
        self, model: Any, prompts: dict[str, str] | None = None, lengths: tuple[int, int] | None = None
    ) -> None:
        self.model = model
        self.lengths = lengths
        own = dict(getattr(model, "prompts", None) or {})
        self.prompts = (
            prompts
            if prompts is not None
            else {
                "query": own.get("query", ""),
                "document": own.get("document", own.get("passage", "")),
            }
        )

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> SentenceTransformerEncoder:
        from sentence_transformers import SentenceTransformer

        return cls(SentenceTransformer(str(path), device=device, local_files_only=True))

    def encode(
        self, texts: list[str], kind: EncodeKind, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        own_length = self.model.max_seq_length
        if self.lengths is not None:
            self.model.max_seq_length = self.lengths[0 if kind == "query" else 1]
        try:
            emb = self.model.encode(
                list(texts),
                prompt=self.prompts.get(kind) or None,
                batch_size=batch_size,
                show_progress_bar=show_progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        finally:
            self.model.max_seq_length = own_length
        return np.asarray(emb, dtype=np.float32)  # (n, dim)


class PrefixedEncoder:
    """Prepends fixed prefixes to any encoder's texts (the wrapped encoder's own prefixes still apply)."""

    def __init__(self, inner: TextEncoder, query_prefix: str | None, passage_prefix: str | None) -> None:
        self.inner = inner
        self.prefixes = {"query": query_prefix or "", "document": passage_prefix or ""}

    def encode(
        self, texts: list[str], kind: EncodeKind, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        prefix = self.prefixes[kind]
        return self.inner.encode(
            [prefix + t for t in texts], kind=kind, batch_size=batch_size, show_progress=show_progress
        )


def _with_settings(model: Any, update: dict[str, Any]) -> Any:
    """A copy of rtrain's ``EmbeddingModel`` sharing its weights, with ``update`` applied to its model settings."""
    from rtrain.models.encoder import EmbeddingModel, Encoder

    cfg = model.encoder.cfg.model_copy(update=update)
    return EmbeddingModel(Encoder(model.encoder.backbone, cfg), model.tokenizer, model.device)


def with_prefixes(
    encoder: TextEncoder, query_prefix: str | None = None, passage_prefix: str | None = None
) -> TextEncoder:
    """``encoder`` with its query / passage prefix replaced (``None`` keeps the model's own).

    rtrain's ``EmbeddingModel`` and :class:`SentenceTransformerEncoder` get a copy sharing the
    weights; any other encoder is wrapped in :class:`PrefixedEncoder` (with a warning, since its own
    prefixes cannot be removed).
    """
    if query_prefix is None and passage_prefix is None:
        return encoder
    from rtrain.models.encoder import EmbeddingModel

    if isinstance(encoder, EmbeddingModel):
        prefixes = (("query_prefix", query_prefix), ("passage_prefix", passage_prefix))
        return _with_settings(encoder, {k: v for k, v in prefixes if v is not None})
    if isinstance(encoder, SentenceTransformerEncoder):
        prompts = dict(encoder.prompts)
        prompts.update({k: v for k, v in (("query", query_prefix), ("document", passage_prefix)) if v is not None})
        return SentenceTransformerEncoder(encoder.model, prompts, encoder.lengths)
    logger.warning(
        "encoder %s has no known prefix setting: prepending the suite's prefixes to its texts "
        "(its own prefixes, if any, still apply)",
        type(encoder).__name__,
    )
    return PrefixedEncoder(encoder, query_prefix, passage_prefix)


def encode_lengths(encoder: TextEncoder) -> tuple[int, int] | None:
    """The (query, passage) tokens ``encoder`` keeps per text, for the encoders that say (rtrain's and
    sentence-transformers'); ``None`` for any other."""
    from rtrain.models.encoder import EmbeddingModel

    if isinstance(encoder, EmbeddingModel):
        return encoder.encoder.cfg.query_max_length, encoder.encoder.cfg.passage_max_length
    if isinstance(encoder, SentenceTransformerEncoder):
        return encoder.lengths or (encoder.model.max_seq_length, encoder.model.max_seq_length)
    return None


def with_lengths(encoder: TextEncoder, query: int, passage: int) -> TextEncoder:
    """``encoder`` keeping ``query`` / ``passage`` tokens per text (a copy sharing the weights), so models are
    compared at equal lengths; raises for an encoder without a length setting."""
    from rtrain.models.encoder import EmbeddingModel

    if isinstance(encoder, EmbeddingModel):
        return _with_settings(encoder, {"query_max_length": query, "passage_max_length": passage})
    if isinstance(encoder, SentenceTransformerEncoder):
        return SentenceTransformerEncoder(encoder.model, encoder.prompts, (query, passage))
    raise ValueError(f"{type(encoder).__name__} has no length setting: evaluate it without --max-length")


class CachedEncoder:
    """Remembers each ``(kind, text)`` embedding, so texts shared by tasks are encoded once per model."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner = inner
        self.cache: dict[tuple[str, str], np.ndarray] = {}

    def encode(
        self, texts: list[str], kind: EncodeKind, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if (kind, t) not in self.cache))
        if missing:
            emb = np.asarray(self.inner.encode(missing, kind=kind, batch_size=batch_size, show_progress=show_progress))
            emb = check_embeddings(emb, len(missing), what=f"{kind} texts")  # (n_missing, dim)
            self.cache.update({(kind, t): row for t, row in zip(missing, emb)})
        return np.stack([self.cache[(kind, t)] for t in texts]) if texts else np.zeros((0, 1), np.float32)


def model_kind(spec: str) -> str:
    """Which loader ``spec`` needs: ``pkg``, ``rtrain``, ``sentence-transformers`` or ``hf``; raises if none."""
    if spec.startswith(PKG_SCHEME):
        return "pkg"
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"model {spec!r} is not a folder: give {MODEL_KINDS}")
    if holds_checkpoint(path):
        return "rtrain"
    if (path / "modules.json").is_file():
        return "sentence-transformers"
    if (path / "config.json").is_file():
        return "hf"
    raise FileNotFoundError(
        f"model folder {path} has no {STATE_FILE} or {CHECKPOINT_PREFIX}*/ (rtrain run), "
        f"modules.json (sentence-transformers) or config.json (Hugging Face): give {MODEL_KINDS}"
    )


def load_encoder(spec: str, *, pooling: str | None = None, device: str = "cpu") -> TextEncoder:
    """The :class:`TextEncoder` for a model argument (see the module docstring for what is accepted)."""
    kind = model_kind(spec)
    logger.info("loading %s as a %s model", spec, kind)
    if kind == "rtrain":
        return checkpoint_embedding_model(Path(spec).expanduser(), device=device)
    if kind == "sentence-transformers":
        return SentenceTransformerEncoder.load(Path(spec).expanduser(), device=device)
    from rtrain.config.schema import ModelConfig
    from rtrain.models.encoder import EmbeddingModel

    name = spec if kind == "pkg" else str(Path(spec).expanduser())
    length = model_max_length(name)  # as sentence-transformers / mteb would encode it
    cfg = ModelConfig(name_or_path=name, pooling=pooling or "mean", query_max_length=length, passage_max_length=length)
    return EmbeddingModel.load(cfg, device=device)


def model_max_length(name_or_path: str, cap: int = 512) -> int:
    """The model's own encoding length: `max_seq_length` from sentence_bert_config.json, else the tokenizer's."""
    import json

    from transformers import AutoTokenizer

    from rtrain.models.loading import resolve_model_path

    path = Path(resolve_model_path(name_or_path))
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file() and "max_seq_length" in (data := json.loads(st_config.read_text())):
        return int(data["max_seq_length"])
    return min(int(AutoTokenizer.from_pretrained(str(path)).model_max_length), cap)


def default_model_name(spec: str) -> str:
    """A short name for results folders: the package for ``pkg://``, else the folder name."""
    if spec.startswith(PKG_SCHEME):
        return spec[len(PKG_SCHEME) :].split("/")[0]
    path = Path(spec).expanduser().resolve()
    if path.name.startswith(CHECKPOINT_PREFIX):
        return f"{path.parent.name}_{path.name}"
    return path.name or "model"
