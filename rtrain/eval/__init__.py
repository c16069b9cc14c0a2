"""Evaluation of text encoders: retrieval (mono/cross-lingual), bitext mining and STS, mteb-compatible.

Suites of local tasks (``rtrain eval ... --suite``): :func:`load_suite` + :func:`run_suite`; the task
kinds of a suite: :mod:`rtrain.eval.suite_schema` and :mod:`rtrain.eval.task_kinds`; mteb interop
(wrapper and offline local tasks): :mod:`rtrain.eval.mteb_bridge` (imports mteb, so not here).
Everything else (readers, metrics, encoders, reports) is imported from its submodule.

Typical use::

    from rtrain.eval import BitextMiningEvaluator, RetrievalEvaluator, format_table

    flores = BitextMiningEvaluator.from_flores(["deu_Latn", "hin_Deva"], limit=200)
    retrieval = RetrievalEvaluator.from_pairs("data/eval_pairs.parquet")
    results = {"base": flores(base_encoder), "tuned": flores(tuned_encoder)}
    print(format_table(results))
"""

from rtrain.eval.bitext import BitextMiningEvaluator
from rtrain.eval.protocol import TextEncoder
from rtrain.eval.report import format_table
from rtrain.eval.retrieval import RetrievalEvaluator
from rtrain.eval.sts import STSEvaluator
from rtrain.eval.suite import load_suite, run_suite

__all__ = [
    "BitextMiningEvaluator",
    "RetrievalEvaluator",
    "STSEvaluator",
    "TextEncoder",
    "format_table",
    "load_suite",
    "run_suite",
]
