"""Evaluation of text encoders: retrieval (mono/cross-lingual) and bitext mining, mteb-compatible.

Typical use::

    from rtrain.eval import BitextMiningEvaluator, RetrievalEvaluator, format_table

    flores = BitextMiningEvaluator.from_flores(["deu_Latn", "hin_Deva"], limit=200)
    retrieval = RetrievalEvaluator.from_pairs("data/eval_pairs.parquet")
    results = {"base": flores(base_encoder), "tuned": flores(tuned_encoder)}
    print(format_table(results))
"""

from rtrain.eval.bitext import BitextMiningEvaluator
from rtrain.eval.metrics import (
    bitext_metrics,
    hit_rate_at_k,
    map_at_k,
    mean_metrics,
    mrr_at_k,
    ndcg_at_k,
    nearest_neighbours,
    precision_at_k,
    query_metrics,
    rank_documents,
    recall_at_k,
    retrieval_metrics,
    score_rankings,
)
from rtrain.eval.protocol import TextEncoder, check_embeddings, encode_checked
from rtrain.eval.readers import (
    BeirData,
    check_pair_rows,
    default_flores_root,
    flores_codes,
    read_beir,
    read_flores,
    read_flores_file,
    read_pairs,
    read_parallel_files,
    read_parallel_tsv,
)
from rtrain.eval.report import bar_chart, format_table
from rtrain.eval.retrieval import RetrievalEvaluator, build_index, search_index

__all__ = [
    "BeirData",
    "BitextMiningEvaluator",
    "RetrievalEvaluator",
    "TextEncoder",
    "bar_chart",
    "bitext_metrics",
    "build_index",
    "check_embeddings",
    "check_pair_rows",
    "default_flores_root",
    "encode_checked",
    "flores_codes",
    "format_table",
    "hit_rate_at_k",
    "map_at_k",
    "mean_metrics",
    "mrr_at_k",
    "ndcg_at_k",
    "nearest_neighbours",
    "precision_at_k",
    "query_metrics",
    "rank_documents",
    "read_beir",
    "read_flores",
    "read_flores_file",
    "read_pairs",
    "read_parallel_files",
    "read_parallel_tsv",
    "recall_at_k",
    "retrieval_metrics",
    "score_rankings",
    "search_index",
]
