"""`rtrain export`: a checkpoint -> a merged sentence-transformers model folder with a model card.

Packaging only: what a checkpoint holds and how to read it is `rtrain.checkpoint`'s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer
from sentence_transformers.models import Normalize, Pooling, Transformer

from rtrain.checkpoint import (
    ADAPTER_DIR,
    adapter_path,
    best_checkpoint,
    checkpoint_backbone,
    load_job,
    load_metrics,
    load_trainer_state,
    selection,
)
from rtrain.config.load import ConfigError, dump_yaml
from rtrain.config.schema import JobConfig
from rtrain.losses.registry import loss_kind

ST_POOLING = {"mean": "mean", "cls": "cls", "last_token": "lasttoken"}


def model_card(cfg: JobConfig, checkpoint: Path) -> str:
    """README.md for the exported model: base model, how it was trained, on what, and its metrics."""
    state = load_trainer_state(checkpoint)
    metrics = load_metrics(checkpoint)
    rows = "\n".join(f"| {k} | {v:.4g} |" for k, v in metrics.items() if isinstance(v, (int, float)))
    chosen = selection(checkpoint.parent, checkpoint)
    chosen_line = f"\n**Selection against the base model:** {chosen.describe()}.\n" if chosen is not None else ""
    data = ", ".join(cfg.data.train_files) or "; ".join(
        f"{src.name}: {', '.join(src.files)}" for src in cfg.data.sources
    )
    loss = loss_kind(cfg.loss.kind).display_name
    if cfg.loss.base_anchor > 0:
        loss += f" + base anchor (weight {cfg.loss.base_anchor})"
    method = (
        f"LoRA (r={cfg.lora.r}, alpha={cfg.lora.alpha}, dropout={cfg.lora.dropout}), merged into the base weights"
        if cfg.lora.enabled
        else "full fine-tuning"
    )
    return f"""---
library_name: sentence-transformers
tags: [sentence-transformers, feature-extraction, rtrain]
base_model: {cfg.model.name_or_path}
---
# {cfg.name}

Retrofitted for retrieval with rtrain: contrastive fine-tuning
({loss}; temperature {cfg.loss.temperature}, in-batch + {cfg.loss.negatives_per_query} hard negative(s) per query)
of `{cfg.model.name_or_path}` with {method}.
{chosen_line}
## Use
```python
from peft import PeftModel
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("path/to/this/folder")
q = model.encode(["..."], prompt_name="query")
d = model.encode(["..."], prompt_name="document")
```
Pooling: {cfg.model.pooling}; normalised: {cfg.model.normalize}; query prefix {cfg.model.query_prefix!r};
passage prefix {cfg.model.passage_prefix!r}.

## Training
- steps: {state["step"]}; data: {data}
- global batch: {cfg.scaling.num_workers} workers x {cfg.train.batch_size_per_worker} x \
{cfg.train.gradient_accumulation_steps} accumulation
- optimizer: AdamW, lr {cfg.train.learning_rate}, {cfg.train.scheduler} schedule, backend {cfg.train.backend}

## Metrics at the selected checkpoint
| metric | value |
|---|---|
{rows}

## Config
```yaml
{dump_yaml(cfg)}```
The raw PEFT adapter (when LoRA was used) is in `{ADAPTER_DIR}/`.
"""


EXPORT_MARKER = ".rtrain-export"  # in every exported folder: a later export may replace that folder, none other


def _exported(folder: Path) -> bool:
    """An earlier `rtrain export` wrote `folder` (its marker; or, from before markers, its model card's tag)."""
    card = folder / "README.md"
    legacy = (
        (folder / "modules.json").is_file() and card.is_file() and "feature-extraction, rtrain]" in card.read_text()
    )
    return (folder / EXPORT_MARKER).is_file() or legacy


def check_out(out_dir: Path) -> None:
    """Refuse an output that is a file, a symlink, or a non-empty folder rtrain export did not write."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise ConfigError(f"--out {out_dir} is a file or a symlink; name a folder for the model")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not _exported(out_dir):
        raise ConfigError(
            f"--out {out_dir} holds files rtrain export did not write; choose a new or empty folder "
            "(a folder an earlier export wrote is replaced)"
        )


def export_model(run_or_checkpoint: Path, out_dir: Path) -> Path:
    """Write a merged sentence-transformers model for a run's best checkpoint (by eval_score when the run
    evaluated, else its latest), or for one checkpoint folder.

    The model is written into a new folder beside `out_dir` and swapped in whole: an earlier export there
    is replaced only once the new one is complete, and a folder of other files is refused before any work.
    """
    out_dir = Path(out_dir)
    check_out(out_dir)
    checkpoint = best_checkpoint(Path(run_or_checkpoint))
    cfg = load_job(checkpoint)
    merged, tokenizer = checkpoint_backbone(checkpoint, cfg)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-", dir=out_dir.parent))
    try:
        _write_model(checkpoint, cfg, merged, tokenizer, staging)
        old = out_dir.with_name(f".{out_dir.name}.replaced-{os.getpid()}")
        if out_dir.exists():
            os.rename(out_dir, old)
        os.rename(staging, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _write_model(checkpoint: Path, cfg: JobConfig, merged: Any, tokenizer: Any, out_dir: Path) -> None:
    """The sentence-transformers folder, the raw adapter, the model card and the export marker, into `out_dir`."""
    with tempfile.TemporaryDirectory(prefix="rtrain-export-") as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        transformer = Transformer(tmp, max_seq_length=max(cfg.model.query_max_length, cfg.model.passage_max_length))
        modules = [transformer, Pooling(transformer.get_embedding_dimension(), ST_POOLING[cfg.model.pooling])]
        if cfg.model.normalize:
            modules.append(Normalize())
        prompts = {"query": cfg.model.query_prefix, "document": cfg.model.passage_prefix}
        model = SentenceTransformer(modules=modules, prompts=prompts, device="cpu")
        model.save(str(out_dir))
    adapter = adapter_path(checkpoint)
    if adapter is not None:
        shutil.copytree(adapter, out_dir / ADAPTER_DIR)
    (out_dir / "README.md").write_text(model_card(cfg, checkpoint))
    (out_dir / EXPORT_MARKER).write_text(f"exported from {checkpoint}\n")
