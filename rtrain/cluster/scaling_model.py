"""`rtrain scaling`: a model (not a measurement) of step time and scaling efficiency on N GPUs.

Weak scaling, as rtrain's cluster recipes run: the per-worker batch is fixed, so every worker computes the
same step whatever N is, and only communication grows. Per optimizer step a worker

- all-gathers the embeddings of every text of its batch for the contrastive loss (loss.gather_across_workers),
  once per micro-batch (once per step under GradCache), and reduce-scatters their gradient on the way back;
- all-reduces the gradients of the trainable parameters once (ZeRO-2's reduce-scatter + all-gather moves the
  same bytes).

A ring collective over N workers moves (N - 1) / N of its payload through the slowest link of the ring (an
all-reduce twice) and pays one latency per hop. Inside one node the link is NVLink; across nodes it is the
per-GPU network. Step time = measured compute time + this communication, with no overlap (DDP and DeepSpeed
overlap part of the gradient all-reduce with backward, so the model errs on the slow side).
The compute time comes from a measured run (its train log, on the hardware to extrapolate) or is given.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rtrain.checkpoint import JOB_FILE, LOG_FILE
from rtrain.cluster.memory import ModelSize, uses_bf16
from rtrain.config.load import ConfigError, resolve_job
from rtrain.config.schema import JobConfig


@dataclass(frozen=True)
class Network:
    """Assumed links (GB/s of NCCL bus bandwidth) and per-hop latency: the model's inputs, stated with its output."""

    gpus_per_node: int = 8
    intra_node_gb_s: float = 300.0  # NVLink (H100 SXM: 450 GB/s nominal, ~2/3 achieved in NCCL tests)
    inter_node_gb_s: float = 40.0  # one 400 Gb/s NIC per GPU (50 GB/s), ~80% achieved
    latency_s: float = 20e-6  # per ring hop

    def bandwidth(self, world: int) -> float:
        """Bytes/s of the slowest link of a ring over `world` workers."""
        return 1e9 * (self.intra_node_gb_s if world <= self.gpus_per_node else self.inter_node_gb_s)


@dataclass(frozen=True)
class StepVolume:
    """Bytes one worker contributes per optimizer step: embedding all-gathers and the gradient all-reduce."""

    embeddings_per_worker: int  # one worker's share of the gathered embeddings per step (all micro-batches)
    gathers_per_step: int  # all-gather collectives per step (micro-batches, or 1 under GradCache)
    gradient_bytes: int  # trainable parameters x gradient element size


@dataclass(frozen=True)
class ScalingRow:
    gpus: int
    nodes: int
    global_batch: int
    compute_s: float
    gather_s: float
    gradient_s: float

    @property
    def step_s(self) -> float:
        return self.compute_s + self.gather_s + self.gradient_s

    @property
    def pairs_per_s(self) -> float:
        return self.global_batch / self.step_s

    @property
    def efficiency(self) -> float:
        """pairs/s per GPU over the 1-GPU figure (which has no communication)."""
        return self.compute_s / self.step_s


def pairs_per_worker(job: JobConfig) -> int:
    """Pairs one worker trains on per optimizer step (all its micro-batches)."""
    return job.train.batch_size_per_worker * job.train.gradient_accumulation_steps


def step_volume(job: JobConfig, size: ModelSize) -> StepVolume:
    """What a worker sends per step for `job`; embeddings in fp32 (the loss runs in fp32), gradients as kept."""
    texts_per_pair = 2 + job.loss.negatives_per_query  # query, positive, hard negatives
    gathered = pairs_per_worker(job) * texts_per_pair * size.hidden_size * 4 if job.loss.gather_across_workers else 0
    gathers = 0 if not gathered else (1 if job.loss.cached else job.train.gradient_accumulation_steps)
    deepspeed_bf16 = job.train.backend == "deepspeed" and uses_bf16(job)
    return StepVolume(gathered, gathers, size.trainable_params * (2 if deepspeed_bf16 else 4))


def ring_seconds(payload: float, world: int, net: Network, passes: int = 1) -> float:
    """Time of `passes` ring passes (all-gather or reduce-scatter: 1, all-reduce: 2) of a `payload`-byte result."""
    if world <= 1 or payload <= 0:
        return 0.0
    return passes * ((world - 1) / world * payload / net.bandwidth(world) + (world - 1) * net.latency_s)


def communication_s(volume: StepVolume, world: int, net: Network) -> tuple[float, float]:
    """(embedding gather seconds, gradient all-reduce seconds) per step on `world` workers."""
    per_gather = volume.embeddings_per_worker / max(volume.gathers_per_step, 1) * world  # the gathered result
    gather = volume.gathers_per_step * 2 * ring_seconds(per_gather, world, net)  # forward gather + backward scatter
    return gather, ring_seconds(volume.gradient_bytes, world, net, passes=2)


def model_scaling(
    job: JobConfig, size: ModelSize, compute_s: float, gpus: Sequence[int], net: Network
) -> list[ScalingRow]:
    """Modelled rows for each GPU count, from the compute time of one worker's step."""
    volume = step_volume(job, size)
    rows = []
    for n in gpus:
        gather, gradient = communication_s(volume, n, net)
        nodes = math.ceil(n / net.gpus_per_node)
        rows.append(ScalingRow(n, nodes, n * pairs_per_worker(job), compute_s, gather, gradient))
    return rows


@dataclass(frozen=True)
class MeasuredStep:
    """A step time read from a run's train log, and the compute part of it under the model."""

    run_dir: Path
    world: int
    step_s: float  # median over log windows, data waiting excluded
    windows: int
    compute_s: float  # step_s less the modelled communication at `world`


def measured_step(run_dir: Path, job: JobConfig, size: ModelSize, net: Network) -> MeasuredStep:
    """The median step time of a finished run's log windows (the first window, with warm-up, left out)."""
    log = run_dir / LOG_FILE
    if not log.is_file():
        raise ConfigError(f"{run_dir}: no {LOG_FILE}; give a run dir that trained, or a job file with --step-s")
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    windows = [r for r in records if r.get("pairs_per_s")][1:]
    if not windows:
        raise ConfigError(f"{log}: fewer than 2 log windows to time a step; train longer or pass --step-s")
    world = job.scaling.num_workers
    global_batch = world * pairs_per_worker(job)
    steps = [global_batch / r["pairs_per_s"] * (1.0 - r.get("data_wait_frac", 0.0)) for r in windows]
    step_s = statistics.median(steps)
    gather, gradient = communication_s(step_volume(job, size), world, net)
    return MeasuredStep(run_dir, world, step_s, len(windows), max(step_s - gather - gradient, 0.0))


def load_source(path: Path, overrides: Sequence[str] = ()) -> tuple[JobConfig, Path | None]:
    """(job, run dir or None) from a run dir (its job.yaml) or a job file."""
    if path.is_dir():
        if not (path / JOB_FILE).is_file():
            raise ConfigError(f"{path}: no {JOB_FILE}; give a run dir (the folder with job.yaml) or a job file")
        return resolve_job(path / JOB_FILE, overrides), path
    return resolve_job(path, overrides), None


def format_rows(rows: Sequence[ScalingRow]) -> list[list[str]]:
    """Table cells (HEADERS): GPUs, nodes, global batch, compute, gather, gradient and step ms, pairs/s, efficiency."""
    return [
        [
            str(r.gpus),
            str(r.nodes),
            f"{r.global_batch:,}",
            f"{1e3 * r.compute_s:.1f}",
            f"{1e3 * r.gather_s:.2f}",
            f"{1e3 * r.gradient_s:.2f}",
            f"{1e3 * r.step_s:.1f}",
            f"{r.pairs_per_s:,.0f}" if r.pairs_per_s >= 100 else f"{r.pairs_per_s:.3g}",
            f"{100 * r.efficiency:.1f}%",
        ]
        for r in rows
    ]


HEADERS = ["GPUs", "nodes", "batch", "compute", "gather", "grads", "step", "pairs/s", "effic."]  # times in ms
