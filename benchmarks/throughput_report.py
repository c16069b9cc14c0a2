"""Training throughput, the reporting half: ratios between methods, the console tables, the RESULTS.md section.

Measurements come from `throughput_measure.py`; `train_throughput.py` (the entry point) runs both.
"""

from __future__ import annotations

import argparse
import platform
import statistics
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import torch
from rich.table import Table
from throughput_measure import LOCAL, METHOD_ORDER, MINILM, RAY_DDP, RAY_DS, ST, Measurement, Workload, console, nan

SECTION = "train_throughput"  # the default `## ` section of --out; --section names another


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for dist_name in ("ray", "deepspeed", "sentence-transformers", "transformers", "peft"):
        try:
            out[dist_name] = metadata.version(dist_name)
        except metadata.PackageNotFoundError:
            out[dist_name] = "not installed"
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def find(results: list[Measurement], method: str, mode: str) -> Measurement | None:
    return next((m for m in results if m.method == method and m.mode == mode), None)


@dataclass
class Ratio:
    mode: str
    name: str
    mean: float  # from pairs/s over all timed steps
    median: float  # from median step times
    cpu: float  # from pairs per CPU-second of our processes
    target: str
    overhead: bool = False  # shown as a percentage
    per_round: list[float] = field(default_factory=list)  # the pairs/s ratio of each round (with --rounds > 1)

    def fmt(self, value: float) -> str:
        return f"{100 * value:.1f}%" if self.overhead else f"{value:.2f}"

    def fmt_rounds(self) -> str:
        return " / ".join(self.fmt(v) for v in self.per_round) if len(self.per_round) > 1 else "-"

    @property
    def met(self) -> bool | None:
        if self.target.startswith("<"):
            return self.mean < float(self.target.strip("<% ")) / 100
        if self.target.startswith(">="):
            return self.mean >= float(self.target[2:])
        return None


class Targets(NamedTuple):
    """What a run's headline ratios are judged against."""

    st: str = ">= 1.0"  # rtrain / sentence-transformers
    ray_overhead: str = "< 5%"  # 1 - Ray(ddp) / no-Ray


def ratios(results: list[Measurement], modes: list[str], targets: Targets) -> list[Ratio]:
    """The headline ratios that can be computed from `results`, each with its target from `targets`."""
    out: list[Ratio] = []

    def ratio(a: Measurement, b: Measurement) -> tuple[float, float, float]:
        return (
            a.pairs_per_s / b.pairs_per_s,
            a.median_pairs_per_s / b.median_pairs_per_s,
            a.pairs_per_cpu_s / b.pairs_per_cpu_s,
        )

    for mode in modes:
        ray_ddp, ds = find(results, RAY_DDP, mode), find(results, RAY_DS, mode)
        local, st = find(results, LOCAL, mode), find(results, ST, mode)
        if ray_ddp and local:
            mean, med, cpu = ratio(ray_ddp, local)
            out.append(
                Ratio(
                    mode,
                    "Ray overhead = 1 - Ray(ddp) / no-Ray",
                    1 - mean,
                    1 - med,
                    1 - cpu,
                    targets.ray_overhead,
                    overhead=True,
                )
            )
        if local and st:
            out.append(Ratio(mode, "rtrain no-Ray / sentence-transformers", *ratio(local, st), targets.st))
        if ray_ddp and st:
            out.append(Ratio(mode, "rtrain Ray(ddp) / sentence-transformers", *ratio(ray_ddp, st), targets.st))
        if ds and ray_ddp:
            out.append(Ratio(mode, "Ray ZeRO-2 / Ray ddp", *ratio(ds, ray_ddp), "info"))
    return out


def notes(m: Measurement) -> str:
    parts = []
    if "ray_helper_cores" in m.extra:
        parts.append(
            f"train worker {m.extra.get('train_worker_cores', nan):.2f} cores (OMP_NUM_THREADS="
            f"{m.info.get('train_worker_omp')}, nice {m.info.get('train_worker_nice')}), other Ray "
            f"processes {m.extra['ray_helper_cores']:.2f} ({m.info.get('ray_helpers', '')})"
        )
    if "data_wait_frac" in m.extra:
        parts.append(f"data wait {100 * m.extra['data_wait_frac']:.1f}%")
    if "optimizer_frac" in m.extra:
        parts.append(f"optimizer {100 * m.extra['optimizer_frac']:.1f}%, collate {100 * m.extra['collate_frac']:.1f}%")
    if "useful_frac" in m.extra:
        parts.append(f"useful tokens {100 * m.extra['useful_frac']:.0f}%")
    if "mean_loss" in m.extra:
        parts.append(f"mean loss {m.extra['mean_loss']:.4f}")
    if "loss" in m.info:
        parts.append(m.info["loss"])
    if "dropout" in m.info:
        parts.append(f"dropout {m.info['dropout']}")
    if "optim" in m.info:
        parts.append(m.info["optim"])
    return ", ".join(parts)


COLUMNS = (
    "mode",
    "method",
    "pairs/s",
    "median-step pairs/s",
    "pairs per CPU-s",
    "s/step",
    "step CV",
    "our CPU cores",
    "other jobs' CPU cores",
    "run wall s",
    "notes",
)


def row(m: Measurement) -> list[str]:
    return [
        m.mode,
        m.method,
        f"{m.pairs_per_s:.1f}",
        f"{m.median_pairs_per_s:.1f}",
        f"{m.pairs_per_cpu_s:.1f}",
        f"{sum(m.step_times) / len(m.step_times):.2f}",
        f"{m.step_cv:.2f}",
        f"{m.extra.get('our_cores', nan):.2f}",
        f"{m.extra.get('other_jobs_cores', nan):.2f}",
        f"{m.total_wall_s:.0f}",
        notes(m),
    ]


def merge(parts: list[Measurement]) -> Measurement:
    """One measurement from the rounds of a method x mode: all timed steps, CPU seconds summed,
    other figures weighted by each round's timed wall time."""
    if len(parts) == 1:
        return parts[0]
    weights = [sum(m.step_times) for m in parts]
    extra: dict[str, float] = {}
    for key in sorted(set().union(*(m.extra for m in parts))):
        if key == "our_cpu_s":
            extra[key] = sum(m.extra.get(key, 0.0) for m in parts)
            continue
        pairs = [(m.extra[key], w) for m, w in zip(parts, weights) if key in m.extra]
        extra[key] = sum(v * w for v, w in pairs) / sum(w for _, w in pairs)
    first = parts[0]
    return Measurement(
        first.method,
        first.mode,
        first.batch_size,
        [t for m in parts for t in m.step_times],
        statistics.mean(m.total_wall_s for m in parts),
        extra,
        dict(first.info),
    )


def combine_rounds(
    rounds: list[list[Measurement]], modes: list[str], targets: Targets
) -> tuple[list[Measurement], list[Ratio]]:
    """Merged measurements, and the ratios of the merged data with each round's own ratio attached."""
    keys = [(m.method, m.mode) for m in rounds[0]]
    merged = [merge([m for rnd in rounds for m in rnd if (m.method, m.mode) == key]) for key in keys]
    merged.sort(key=lambda m: (modes.index(m.mode), METHOD_ORDER.index(m.method)))
    combined = ratios(merged, modes, targets)
    for r in combined:
        for rnd in rounds:
            match = [x for x in ratios(rnd, modes, targets) if (x.mode, x.name) == (r.mode, r.name)]
            if match:
                r.per_round.append(match[0].mean)
    return merged, combined


RATIO_COLUMNS = ("mode", "ratio", "from pairs/s", "from median steps", "from pairs per CPU-s", "per round", "target")


def print_table(results: list[Measurement], ratio_rows: list[Ratio]) -> None:
    table = Table(title="train throughput (pairs/s, higher is better)")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("mode", "method", "notes") else "right")
    for m in results:
        table.add_row(*row(m))
    console.print(table)
    rt = Table(title="ratios")
    for col in RATIO_COLUMNS:
        rt.add_column(col)
    for r in ratio_rows:
        rt.add_row(r.mode, r.name, r.fmt(r.mean), r.fmt(r.median), r.fmt(r.cpu), r.fmt_rounds(), r.target)
    console.print(rt)


def markdown(
    results: list[Measurement], ratio_rows: list[Ratio], args: argparse.Namespace, meta: dict[str, Any], reading: str
) -> str:
    v = meta["versions"]
    workload: Workload = meta["workload"]
    cmd = (
        f"python benchmarks/train_throughput.py --steps {args.steps} --warmup {args.warmup} "
        f"--rounds {args.rounds} --batch-size {args.batch_size} --modes {','.join(args.mode_list)} "
        f"--ray-backends {','.join(args.backend_list) or repr('')}"
        + (f" --rows {args.rows}" if args.rows != 2000 else "")
        + (f" --threads {args.threads}" if args.threads != 2 else "")
        + (f" --model {args.model}" if args.model != MINILM else "")
        + (f" --data {args.data}" if args.data else "")
        + (f" --max-length {args.max_length}" if args.max_length != 64 else "")
        + (f" --cached {args.cached}" if args.cached else "")
        + (" --unpadded" if args.unpadded else "")
        + (f" --section {args.section}" if args.section != SECTION else "")
    )
    lines = [
        f"## {args.section}",
        "",
        f"Run {meta['date']}: `{cmd}` ({meta['bench_wall_s']:.0f} s for the whole benchmark).",
        "",
        f"- Machine: {meta['cpus']}-core CPU ({meta['cpu']}), no GPU, shared with other jobs; 1-min load average "
        f"{meta['load_before']} before, {meta['load_after']} after.",
        f"- Versions: torch {v['torch']}, ray {v['ray']}, deepspeed {v['deepspeed']}, sentence-transformers "
        f"{v['sentence-transformers']}, transformers {v['transformers']}, peft {v['peft']}, Python {v['python']}.",
        f"- Workload: `{workload.model}`, {meta['rows']} pairs from {meta['data_origin']}, "
        f"{args.batch_size} pairs per optimizer step, 1 hard negative each (3 x {args.batch_size} texts encoded per "
        f"step), max length {workload.max_length} for every text, no prefixes, "
        + (
            f"GradCache with mini-batches of {workload.mini_batch} texts (rtrain `loss.cached`, whose mini-batches "
            "are cut from length-sorted rows, each trimmed to its longest text; sentence-transformers "
            "`CachedMultipleNegativesRankingLoss`, whose mini-batches are cut in batch order, each trimmed to its "
            "longest text), "
            if workload.mini_batch
            else ""
        )
        + (
            "rtrain unpadded (`model.unpadded`: each batch's real tokens packed before the encoder layers, so its "
            "linear layers compute no padding; attention on the padded grid), "
            if workload.unpadded
            else ""
        )
        + "InfoNCE = MNRL at temperature 0.05 (scale 20), AdamW (weight decay 0.01), linear "
        "schedule with 10% warmup, clipping 1.0, fp32, dropout on (train mode) in every method. LoRA: r=8, alpha=16, "
        "dropout 0.05 on query/key/value/dense, "
        "lr 2e-4; full fine-tuning: lr 2e-5.",
        f"- Threads: {args.threads} torch threads for every method."
        + (
            " rtrain's worker sets `torch.set_num_threads(int(scaling.cpus_per_worker))`, so the Ray runs use 1 "
            f"worker with `scaling.cpus_per_worker={args.ray_cpus_per_worker:g}` on a Ray started with "
            f"{meta['ray_cpus']} logical CPUs (one left for Ray Data's tasks); OMP_NUM_THREADS is also set in the "
            "runtime env. With `cpus_per_worker=1` the worker would train on 1 thread, leaving one of the 2 cores to "
            f"Ray's helpers. Ray's workers run at niceness {args.ray_niceness} (`RAY_worker_niceness`; Ray's "
            "default is 15), the priority of the no-Ray processes, so other jobs on the machine do not penalise the "
            "Ray rows alone."
            if args.backend_list
            else " No Ray rows in this run (`--ray-backends ''`)."
        ),
        f"- Method: {args.warmup} warmup steps dropped, then {args.steps} timed steps per row"
        + (
            f" and round, in {args.rounds} interleaved rounds (every method runs afresh once per round; the table "
            "merges the rounds, 'per round' shows each round's own ratio)"
            if args.rounds > 1
            else ""
        )
        + "; identical batches in identical order for every method. pairs/s = timed pairs / sum of step wall "
        "times; the median-step figure is less sensitive to other jobs. A step runs from the end of the previous "
        "step to the end of this one (batch fetch and padding included). Ray: `rtrain.train.trainer.train` with "
        "1 worker, Ray Data tokenizing, per-step `pairs_per_s` read from the run's `train_log.jsonl` "
        "(`train.log_every_steps=1`). "
        "No Ray: rtrain's `build_encoder` / `build_loss` / `TorchEngine` / `PairCollator` / `train_step` on rows "
        "tokenized up front, timed with `perf_counter`. sentence-transformers: `SentenceTransformerTrainer` with "
        "the loss named in its notes, sequential batch sampler, `on_step_end` callback times, its default "
        "optimizer. 'run wall s' is the whole call (start-up, model load, final checkpoint), not part of pairs/s. "
        "'step CV' = stdev / mean of step times. CPU cores = CPU seconds / wall seconds during the timed steps, from "
        "sampling every process on the machine (psutil, every 0.5 s): 'our' = this benchmark's process tree (for Ray: "
        "driver, daemons, Ray Data and Train actors, train worker), 'other jobs' = everything else on the shared "
        "machine; anything above ~0.1 there means the row competed with other work for the 2 cores. 'pairs per "
        "CPU-s' = timed pairs / CPU seconds of our processes: other jobs stretch wall time but hardly our CPU time, "
        "so this column (and the ratios from it) is the least distorted by a shared machine, and it charges Ray "
        "for the CPU of its helper processes; it does not see idle waiting (see 'data wait'), and it is inflated "
        "when the 2 torch threads do not get 2 cores (the waiting thread spins). 'useful tokens' = real tokens / "
        "token positions the encoder computed in the timed steps (every forward, GradCache's included); 'mean "
        "loss' = the training loss averaged over the timed steps (dropout differs between methods, so equal "
        "losses agree to noise, not to the digit).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if c in ("mode", "method", "notes") else "---:" for c in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(row(m)) + " |" for m in results]
    lines += ["", "| " + " | ".join(RATIO_COLUMNS) + " |", "|---|---|---:|---:|---:|---:|---|"]
    for r in ratio_rows:
        lines.append(
            f"| {r.mode} | {r.name} | {r.fmt(r.mean)} | {r.fmt(r.median)} | {r.fmt(r.cpu)} | "
            f"{r.fmt_rounds()} | {r.target} |"
        )
    lines += ["", reading, ""]
    return "\n".join(lines)


def reading_paragraph(
    results: list[Measurement], ratio_rows: list[Ratio], modes: list[str], cpus: int, note: str = ""
) -> str:
    """A reading generated from the numbers: which targets hold, what a step is made of, how noisy it was."""
    parts: list[str] = ["**Reading.**"]
    for mode in modes:
        local, ray_ddp = find(results, LOCAL, mode), find(results, RAY_DDP, mode)
        st = find(results, ST, mode)
        bits = []
        if local:
            fb = 1 - local.extra["optimizer_frac"] - local.extra["collate_frac"]
            bits.append(
                f"a no-Ray step is {100 * fb:.0f}% forward + backward of the 3 x batch texts, "
                f"{100 * local.extra['optimizer_frac']:.1f}% optimizer, "
                f"{100 * local.extra['collate_frac']:.1f}% padding"
            )
        for r in ratio_rows:
            if r.mode != mode or r.met is None:
                continue
            spread = f", rounds {r.fmt_rounds()}" if len(r.per_round) > 1 else ""
            bits.append(
                f"{r.name}: {r.fmt(r.mean)} (median steps {r.fmt(r.median)}, per CPU-s {r.fmt(r.cpu)}"
                f"{spread}), target {r.target} {'met' if r.met else 'MISSED'}"
            )
        if local and st and "mean_loss" in local.extra and "mean_loss" in st.extra:
            bits.append(
                f"mean training loss over the timed steps {local.extra['mean_loss']:.4f} (rtrain) vs "
                f"{st.extra['mean_loss']:.4f} (sentence-transformers), useful tokens "
                f"{100 * local.extra.get('useful_frac', nan):.0f}% vs {100 * st.extra.get('useful_frac', nan):.0f}%"
            )
        if ray_ddp:
            bits.append(
                f"on Ray, waiting for Ray Data is {100 * ray_ddp.extra.get('data_wait_frac', nan):.1f}% of a step "
                "while "
                f"Ray's processes other than the train worker (driver, daemons, Train/Data actors) used "
                f"{ray_ddp.extra.get('ray_helper_cores', nan):.2f} of the {cpus} cores during the timed steps "
                f"(the worker itself {ray_ddp.extra.get('train_worker_cores', nan):.2f}); the run's fixed cost "
                f"(start-up, model load in the worker, final checkpoint) adds "
                f"{ray_ddp.total_wall_s - sum(ray_ddp.step_times):.0f} s outside the timed steps"
            )
        if bits:
            parts.append(f"*{mode}*: " + "; ".join(bits) + ".")
    busy = [m for m in results if m.extra.get("other_jobs_cores", 0.0) > 0.15 or m.step_cv > 0.25]
    if busy:
        parts.append(
            "Noise: "
            + ", ".join(
                f"{m.method} ({m.mode}; other jobs {m.extra.get('other_jobs_cores', nan):.2f} cores, "
                f"step CV {m.step_cv:.2f})"
                for m in busy
            )
            + " ran while other jobs competed for the cores or had erratic steps, so ratios involving them are "
            "distorted; trust the median-step column more and re-run on a quiet machine before acting on them."
        )
    else:
        parts.append("Step times were steady (CV <= 0.25) and other jobs used < 0.15 cores during every row.")
    if note:
        parts.append(note)
    return " ".join(parts)


# --------------------------------------------------------------------------------------------- main
