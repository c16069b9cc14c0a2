"""`rtrain submit --dry-run`: the resolved plan of a job, printed before anything is sent.

Batch geometry (world size, per-worker and global batch, accumulation, steps, tokens per step) comes
from the validated job; parameters and the memory estimate from `rtrain.cluster.memory`.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rtrain.cluster.memory import GIB, MemoryEstimate, ModelSize, estimate_memory, model_size
from rtrain.cluster.spec import JobSpec
from rtrain.config.load import ConfigError
from rtrain.config.schema import JobConfig


@dataclass(frozen=True)
class Plan:
    """The numbers a cluster job is sized by; `memory` is None when the model config was not found."""

    world_size: int
    use_gpu: bool
    gpus_per_node: int
    nodes: int
    batch_per_worker: int
    accumulation: int
    global_batch: int
    steps: int | None  # None: set by epochs and the row count, known once the job reads its data
    epochs: int
    tokens_per_step: int  # upper bound: every text padded to its maximum length
    candidates_per_query: int  # in-batch positives and hard negatives a query is scored against
    model: ModelSize | None
    memory: MemoryEstimate | None
    memory_error: str | None = None


def build_plan(job: JobConfig, config_dirs: Sequence[Path] = (), gpus_per_node: int = 8) -> Plan:
    """The plan for a training job; a model config that cannot be found leaves `memory` None with the reason."""
    world = job.scaling.num_workers
    per_worker, accum = job.train.batch_size_per_worker, job.train.gradient_accumulation_steps
    global_batch = world * per_worker * accum
    k = job.loss.negatives_per_query
    per_pair = job.model.query_max_length + (1 + k) * job.model.passage_max_length
    candidates = (world * per_worker * (1 + k)) if job.loss.gather_across_workers else per_worker * (1 + k)
    size = memory = None
    error = None
    try:
        size = model_size(job, config_dirs)
        memory = estimate_memory(job, size)
    except ConfigError as err:
        error = str(err)
    return Plan(
        world_size=world,
        use_gpu=job.scaling.use_gpu,
        gpus_per_node=gpus_per_node,
        nodes=math.ceil(world / gpus_per_node) if job.scaling.use_gpu else 0,
        batch_per_worker=per_worker,
        accumulation=accum,
        global_batch=global_batch,
        steps=job.train.max_steps,
        epochs=job.train.epochs,
        tokens_per_step=global_batch * per_pair,
        candidates_per_query=candidates,
        model=size,
        memory=memory,
        memory_error=error,
    )


def check_data(job: JobConfig, project: Path) -> str:
    """Validate and read the job's pair files here, as `rtrain train` would, when they are on this machine.

    Relative paths travel with the working_dir, so they must exist under `project`; an absolute path
    missing here or a URI may live on the cluster only: then the job checks it there, before training.
    Returns the line the plan shows; a bad row or a missing relative file is a UserError naming it.
    """
    from rtrain.data.mix import configured_sources, load_pool

    files = [f for source in configured_sources(job.data) for f in source.files]
    elsewhere = [f for f in files if "://" in f or (Path(f).is_absolute() and not Path(f).exists())]
    missing = [f for f in files if f not in elsewhere and not (project / f).exists()]
    if missing:
        raise ConfigError(
            f"data files {missing} do not exist under {project}; relative paths are shipped with the "
            "working_dir, so fix data.sources / data.train_files (or give the cluster's absolute path)"
        )
    if elsewhere:
        return f"not checked here: {', '.join(elsewhere[:3])} not on this machine (the job checks them first)"
    with contextlib.chdir(project):
        pool = load_pool(job.data, job.loss.negatives_per_query, job.train.seed)
    read = sum(pool.rows_read.values())
    return f"{len(pool.table):,} rows usable of {read:,} read from {len(files)} path(s), every row validated here"


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / 1024**2:.1f} MiB"


def _m(n: int) -> str:
    return f"{n / 1e6:.1f}M"


def format_plan(spec: JobSpec, plan: Plan | None, entry: str, data: str | None = None) -> str:
    """The plan as aligned text lines (a Tune file, which has no single plan, gets one line)."""
    job = spec.train_job
    if job is None or plan is None:  # a Tune file: plans are per trial
        return f"{spec.source}: {spec.kind} file validated; each trial's plan depends on its sampled values"
    rows = [("job", f"{spec.source} -> rtrain {spec.kind} ({job.name})")]
    if data is not None:
        rows.append(("data", data))
    device = "GPU" if plan.use_gpu else "CPU"
    where = f", {plan.nodes} node(s) at {plan.gpus_per_node} GPUs" if plan.use_gpu else ""
    rows.append(
        ("world size", f"{plan.world_size} workers ({device}, {job.scaling.cpus_per_worker:g} CPU each){where}")
    )
    rows.append(("batch per worker", f"{plan.batch_per_worker} pairs x {plan.accumulation} accumulation step(s)"))
    rows.append(("global batch", f"{plan.global_batch} pairs per optimizer step"))
    steps = (
        f"{plan.steps} (train.max_steps)"
        if plan.steps
        else (f"{plan.epochs} epoch(s) x rows // {plan.global_batch} (counted when the job reads its data)")
    )
    rows.append(("steps", steps))
    k = job.loss.negatives_per_query
    rows.append(
        (
            "tokens per step",
            f"<= {plan.tokens_per_step:,} = {plan.global_batch} x ({job.model.query_max_length} + {1 + k} x "
            f"{job.model.passage_max_length}) (padded maxima; dynamic padding makes it less)",
        )
    )
    loss = f"{k} hard negative(s) per query, {plan.candidates_per_query:,} candidates per query"
    if job.loss.cached:
        loss += f", GradCache in chunks of {job.loss.mini_batch_size}"
    rows.append(("loss", loss))
    if plan.model is not None:
        m = plan.model
        if job.lora.enabled:
            base = m.total_params - m.trainable_params
            text = (
                f"{_m(base)} parameters + LoRA r={job.lora.r} on {','.join(m.lora_targets)}: "
                f"{_m(m.trainable_params)} trainable ({100 * m.trainable_params / m.total_params:.2f}%)"
            )
        else:
            text = f"{_m(m.total_params)} parameters, all trainable"
        rows.append(("model", f"{job.model.name_or_path}: {text}"))
        rows.append(("architecture from", m.source))
    if plan.memory is not None:
        mem = plan.memory
        stage = "per GPU" if plan.use_gpu else "per worker"
        rows.append((f"memory {stage}", f"~{_gib(mem.total)} estimated ({mem.precision}, {mem.sharding})"))
        rows.append(("  weights", _gib(mem.weights)))
        rows.append(("  gradients", _gib(mem.gradients)))
        rows.append(
            (
                "  optimizer states",
                _gib(mem.optimizer) + (f" (+{_gib(mem.optimizer_on_cpu)} on CPU)" if mem.optimizer_on_cpu else ""),
            )
        )
        rows.append(("  activations", f"{_gib(mem.activations)} (rough)"))
        rows.append(("  not included", "CUDA context, allocator slack, communication buffers (budget 1-3 GiB)"))
        rows.extend(("  note", note) for note in mem.notes)
    else:
        rows.append(("memory", f"not estimated: {plan.memory_error}"))
    rows.append(("entrypoint", re.sub(r"(--config-b64 )\S+", r"\1<the validated YAML, base64>", entry)))
    rows.append(("outputs", spec.outputs or "(as the file says)"))
    rows.extend(("note", note) for note in spec.notes)
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in rows)
