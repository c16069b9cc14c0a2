"""Corpus readers: real corpora (parallel text, SQuAD QA, monolingual text, pair files, HF datasets) -> pair rows."""

from rtrain.pairs.spec import PairsSpec, load_spec
from rtrain.pairs.textio import CorpusError
from rtrain.pairs.write import PairsBuild, build_pairs

__all__ = ["CorpusError", "PairsBuild", "PairsSpec", "build_pairs", "load_spec"]
