"""The consumption ledger (`output.ledger: true`) and its audit: was every planned row trained on exactly once?

Each rank appends to `<run>/ledger/rank-NNNNN.jsonl`, flushing every line:
- `{"start": {"step": S, "batches_done": B, "pid": P}}` when a worker (re)starts, from its checkpoint;
- `{"batch": J, "step": S, "rows": [...], "t": T}` for every micro-batch J of its stream it trained on, with
  the optimizer step S it belongs to, the stream positions (`row`) Ray Data actually delivered, and when
  (Unix time).

A restart resumes from a checkpoint taken at micro-batch B, so what a rank logged from B on before
the restart was lost with the failed attempt: the audit drops it and keeps the re-trained batches.
What remains is the lineage of the final checkpoint. The audit checks it against the driver's plan
(`<run>/data/rank-NNNNN.parquet`): every rank trained micro-batches 0..M-1 once each, in order, each
on exactly the rows the plan put there, up to the planned last step. Per epoch it counts the planned
example ids trained once, more than once, or never.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq

from rtrain.checkpoint import checkpoints, load_trainer_state
from rtrain.data.batch import ROW
from rtrain.data.layout import MANIFEST, MIX_DIR, rank_stream
from rtrain.errors import UserError

LEDGER_DIR = "ledger"


def ledger_path(run_dir: str | Path, rank: int) -> Path:
    return Path(run_dir) / LEDGER_DIR / f"rank-{rank:05d}.jsonl"


class LedgerWriter:
    """One rank's ledger, appended line by line (flushed, so a killed worker loses nothing it logged)."""

    def __init__(self, run_dir: str | Path, rank: int) -> None:
        path = ledger_path(run_dir, rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = path.open("a", encoding="utf-8")

    def _write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()

    def start(self, step: int, batches_done: int) -> None:
        self._write({"start": {"step": step, "batches_done": batches_done, "pid": os.getpid()}})

    def batch(self, index: int, step: int, rows: list[int]) -> None:
        self._write({"batch": index, "step": step, "rows": rows, "t": round(time.time(), 3)})

    def close(self) -> None:
        self._fh.close()


@dataclass
class RankLineage:
    """What one rank's ledger says survived into the final lineage."""

    batches: dict[int, list[int]] = field(default_factory=dict)  # micro-batch -> stream rows
    attempts: int = 0
    discarded: int = 0  # micro-batches trained by a failed attempt after its last checkpoint, then redone
    pids: list[int] = field(default_factory=list)


def read_lineage(path: Path) -> RankLineage:
    """Replay a rank's ledger: each restart drops the batches logged at or after the checkpoint it resumed."""
    lineage = RankLineage()
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if fh.read().strip():  # only a last line cut by a kill may be partial
                    raise UserError(f"{path}:{number}: not a ledger record; the ledger is damaged") from None
                break
            if "start" in record:
                resumed = record["start"]["batches_done"]
                dropped = [j for j in lineage.batches if j >= resumed]
                lineage.discarded += len(dropped)
                for j in dropped:
                    del lineage.batches[j]
                lineage.attempts += 1
                lineage.pids.append(record["start"]["pid"])
            else:
                if record["batch"] in lineage.batches:
                    raise UserError(f"{path}:{number}: micro-batch {record['batch']} trained twice in one attempt")
                lineage.batches[record["batch"]] = record["rows"]
    return lineage


def worker_pids(run_dir: str | Path) -> dict[int, int]:
    """rank -> pid of the worker that last (re)started, from the ledger (fault-injection tests use it)."""
    out = {}
    for path in sorted((Path(run_dir) / LEDGER_DIR).glob("rank-*.jsonl")):
        pids = read_lineage(path).pids
        if pids:
            out[int(path.stem.split("-")[1])] = pids[-1]
    return out


@dataclass
class AuditReport:
    ok: bool
    lines: list[str]

    def text(self) -> str:
        return "\n".join(self.lines)


def audit(run_dir: str | Path) -> AuditReport:
    """Check the ledger of `run_dir` against its plan; the report lists every mismatch found."""
    run = Path(run_dir)
    manifest_path = run / MIX_DIR / MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"{run}: no {MIX_DIR}/{MANIFEST}; give an rtrain run dir (the folder with job.yaml)")
    manifest = json.loads(manifest_path.read_text())
    world, plan = manifest["world_size"], manifest["plan"]
    if not (run / LEDGER_DIR).is_dir():
        raise UserError(f"{run}: no {LEDGER_DIR}/; the run was trained without output.ledger=true")
    final_step = max((load_trainer_state(c)["step"] for c in checkpoints(run)), default=0)
    b = manifest["batch_size_per_worker"]
    per_rank_batches = pq.ParquetFile(rank_stream(run / MIX_DIR, 0)).metadata.num_rows // b
    problems: list[str] = []
    lines = [f"run {run}: {world} rank(s), planned {plan['total_steps']} steps; final checkpoint at step {final_step}"]
    if final_step != plan["total_steps"]:
        problems.append(f"the final checkpoint is at step {final_step}, the plan ends at {plan['total_steps']}")
    trained_ids: list[Counter] = [Counter() for _ in plan["epoch_ends"]]
    planned_ids: list[Counter] = [Counter() for _ in plan["epoch_ends"]]
    for rank in range(world):
        stream = pq.read_table(rank_stream(run / MIX_DIR, rank), columns=["id", ROW])
        ids = stream["id"].to_pylist()
        path = ledger_path(run, rank)
        lineage = read_lineage(path) if path.is_file() else RankLineage()
        expected = range(per_rank_batches)
        missing = [j for j in expected if j not in lineage.batches]
        wrong = [j for j, rows in lineage.batches.items() if rows != list(range(j * b, (j + 1) * b))]
        if missing:
            problems.append(f"rank {rank}: {len(missing)} planned micro-batch(es) never trained, first {missing[:5]}")
        if wrong:
            problems.append(f"rank {rank}: {len(wrong)} micro-batch(es) got rows other than planned, first {wrong[:5]}")
        lines.append(
            f"rank {rank}: {len(lineage.batches)}/{per_rank_batches} micro-batches in the lineage, "
            f"{lineage.attempts} attempt(s), {lineage.discarded} redone after a failure"
        )
        for j in expected:
            epoch = _epoch_of(j // manifest["accumulation"], plan["epoch_ends"])
            planned_ids[epoch].update(ids[j * b : (j + 1) * b])
            for row in lineage.batches.get(j, []):
                trained_ids[epoch][ids[row] if 0 <= row < len(ids) else f"(row {row}: not in the stream)"] += 1
    clean_epochs, clean_rows = 0, 0
    for epoch, (planned, trained) in enumerate(zip(planned_ids, trained_ids)):
        never = sum(1 for i in planned if trained[i] == 0)
        extra = sum(max(0, trained[i] - planned[i]) for i in trained)
        if not (never or extra):
            clean_epochs, clean_rows = clean_epochs + 1, clean_rows + sum(planned.values())
            continue
        once = sum(min(trained[i], n) for i, n in planned.items())
        lines.append(
            f"epoch {epoch}: {sum(planned.values())} planned rows, {once} trained as planned, "
            f"{never} id(s) never trained, {extra} extra"
        )
        problems.append(f"epoch {epoch}: {never} planned id(s) never trained, {extra} trained beyond the plan")
    lines.append(
        f"epochs: {clean_epochs} of {len(planned_ids)} trained every planned id exactly once ({clean_rows} rows)"
    )
    lines += [f"PROBLEM: {p}" for p in problems] or ["audit: clean (every planned row trained exactly once)"]
    return AuditReport(not problems, lines)


def _epoch_of(step_index: int, epoch_ends: list[int]) -> int:
    """The epoch of 0-based optimizer step `step_index`."""
    return next(e for e, end in enumerate(epoch_ends) if step_index < end)
