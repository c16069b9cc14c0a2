"""Synthetic multilingual training pairs from CLDR (babel) slot values and per-language YAML templates.

    from rtrain.synth import SynthConfig, generate
    manifest = generate(SynthConfig(languages=["en", "de"], examples_per_task_language=500), "data/synth")
    # -> data/synth/train.parquet, heldout.parquet (rows of rtrain.data.schema.PAIR_SCHEMA), manifest.json

Method: template-based synthetic query/document pairs for retrofitting small multilingual embedding
models for retrieval (Tu, Yavuz, Zhou 2025).
"""

from rtrain.synth.config import SynthConfig, available_languages, available_tasks
from rtrain.synth.generate import generate

__all__ = ["SynthConfig", "generate", "available_languages", "available_tasks"]
