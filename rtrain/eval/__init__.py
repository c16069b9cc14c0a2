"""Evaluation of text encoders: retrieval (mono/cross-lingual), bitext mining and STS, mteb-compatible.

Suites of local tasks (``rtrain eval ... --suite``): :func:`load_suite` + :func:`run_suite`; mteb
interop (wrapper and offline local tasks): :mod:`rtrain.eval.mteb_bridge` (imports mteb, so not here).

Typical use::

    from rtrain.eval import BitextMiningEvaluator, RetrievalEvaluator, format_table

    flores = BitextMiningEvaluator.from_flores(["deu_Latn", "hin_Deva"], limit=200)
    retrieval = RetrievalEvaluator.from_pairs("data/eval_pairs.parquet")
    results = {"base": flores(base_encoder), "tuned": flores(tuned_encoder)}
    print(format_table(results))
"""

from rtrain.eval.bitext import BitextMiningEvaluator
from rtrain.eval.encoders import CachedEncoder, SentenceTransformerEncoder, load_encoder, with_prefixes
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
    STS17_TRACKS,
    BeirData,
    RetrievalData,
    STSPairs,
    check_pair_rows,
    default_data_root,
    default_flores_root,
    flores_codes,
    mlqa_languages,
    read_beir,
    read_flores,
    read_flores_file,
    read_mlqa,
    read_mlqa_cross,
    read_pairs,
    read_parallel_files,
    read_parallel_tsv,
    read_sts17,
    read_stsb,
    stsb_languages,
)
from rtrain.eval.report import bar_chart, format_table
from rtrain.eval.retrieval import RetrievalEvaluator, build_index, search_index
from rtrain.eval.sts import STSEvaluator, sts_metrics
from rtrain.eval.suite import build_tasks, load_suite, run_suite
from rtrain.eval.suite_schema import SuiteConfig, TaskSpec

__all__ = [
    "BeirData",
    "BitextMiningEvaluator",
    "CachedEncoder",
    "RetrievalData",
    "RetrievalEvaluator",
    "STS17_TRACKS",
    "STSEvaluator",
    "STSPairs",
    "SentenceTransformerEncoder",
    "SuiteConfig",
    "TaskSpec",
    "TextEncoder",
    "bar_chart",
    "bitext_metrics",
    "build_index",
    "build_tasks",
    "check_embeddings",
    "check_pair_rows",
    "default_data_root",
    "default_flores_root",
    "encode_checked",
    "flores_codes",
    "format_table",
    "hit_rate_at_k",
    "load_encoder",
    "load_suite",
    "map_at_k",
    "mean_metrics",
    "mlqa_languages",
    "mrr_at_k",
    "ndcg_at_k",
    "nearest_neighbours",
    "precision_at_k",
    "query_metrics",
    "rank_documents",
    "read_beir",
    "read_flores",
    "read_flores_file",
    "read_mlqa",
    "read_mlqa_cross",
    "read_pairs",
    "read_parallel_files",
    "read_parallel_tsv",
    "read_sts17",
    "read_stsb",
    "recall_at_k",
    "retrieval_metrics",
    "run_suite",
    "score_rankings",
    "search_index",
    "sts_metrics",
    "stsb_languages",
    "with_prefixes",
]
