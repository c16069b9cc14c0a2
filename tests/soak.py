"""Soak (#15): a long run on the tiny model with a Ray Train worker SIGKILLed every few minutes.

    python tests/soak.py --minutes 30 --kill-every 180 --out /tmp/rtrain-soak

The run is sized to last about `--minutes` without faults (its steady step rate is read from the
train log of a short warm-up run first); each kill adds a restart on top. While it trains, a random
rank's worker (its pid from the consumption ledger) is SIGKILLed once the current attempt has trained for
`--kill-every` seconds and past a checkpoint, so every attempt makes progress however long a restart takes.
The soak passes when the run ends at its planned step and `rtrain audit` finds every planned row trained
exactly once. It prints one summary line and writes `<out>/soak.json`. `tests/test_faults.py` runs a
two-minute version (marked slow).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rtrain.checkpoint import load_trainer_state  # noqa: E402
from rtrain.config.load import resolve_job  # noqa: E402
from rtrain.ledger import audit, ledger_path, read_lineage  # noqa: E402
from rtrain.train.trainer import train  # noqa: E402

from tiny import job_dict, make_tiny_model, pair_rows, write_jsonl  # noqa: E402

WORKERS, BATCH = 2, 8  # global batch 16


def _job(
    model: Path, pairs: Path, storage: Path, name: str, steps: int, max_failures: int, checkpoint_every: int
) -> Any:
    return resolve_job(
        job_dict(
            model,
            pairs,
            storage,
            train={
                "max_steps": steps,
                "checkpoint_every_steps": checkpoint_every,
                "log_every_steps": 20,
                "batch_size_per_worker": BATCH,
            },
            scaling={"num_workers": WORKERS, "cpus_per_worker": 0.5, "max_failures": max_failures},
            output={
                "storage_path": str(storage),
                "name": name,
                "export": False,
                "ledger": True,
                "num_checkpoints_to_keep": 1,
            },  # fmt: skip
        )
    )


class _AttemptWatch:
    """Follows one rank's ledger as it grows (reads only the new lines): the current attempt's count and progress."""

    def __init__(self, run_dir: Path, rank: int) -> None:
        self.path, self.offset = ledger_path(run_dir, rank), 0
        self.attempts, self.trained, self.since = 0, 0, 0.0  # since: wall time of the attempt's first micro-batch
        self.pid: int | None = None  # the current attempt's worker

    def poll(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written is read next time
        self.offset += len(complete)
        for line in complete.decode().splitlines():
            record = json.loads(line)
            if "start" in record:
                self.attempts, self.trained, self.since = self.attempts + 1, 0, 0.0
                self.pid = record["start"]["pid"]
            else:
                self.trained += 1
                self.since = self.since or record["t"]


def soak(
    out: Path, minutes: float, kill_every: float, seed: int = 0, checkpoint_every: int = 100, hidden: int = 256
) -> dict[str, Any]:
    """Run the soak; `hidden` sizes the 4-layer toy BERT so that computing a step, not tokenizing its rows,
    dominates (a rank's stream is tokenized whole before its first batch: a restart pays for all of it)."""
    out.mkdir(parents=True, exist_ok=True)
    model = make_tiny_model(out / f"tiny-{hidden}", hidden=hidden, layers=4, max_len=128)
    pairs = write_jsonl(pair_rows(96, negatives=1), out / "pairs.jsonl")
    stamp = time.strftime("%Y%m%d-%H%M%S")  # a new run dir per soak: an earlier soak's runs stay as they were
    warm = train(_job(model, pairs, out / "runs", f"warmup-{stamp}", 3 * checkpoint_every, 0, checkpoint_every))
    logged = [json.loads(line) for line in ledger_path(warm.run_dir, 0).read_text().splitlines()]
    timed = [r for r in logged if "t" in r][checkpoint_every:]  # steady state: from the first checkpoint on
    rate = (timed[-1]["step"] - timed[0]["step"]) / (timed[-1]["t"] - timed[0]["t"])  # steps/s, checkpoints included
    steps = max(checkpoint_every * 3, int(minutes * 60 * rate) // checkpoint_every * checkpoint_every)
    # unlimited restarts: kills and restarts stretch the run, so the kills outnumber any budget sized from the plan
    cfg = _job(model, pairs, out / "runs", f"soak-{stamp}", steps, -1, checkpoint_every)
    run_dir = out / "runs" / f"soak-{stamp}"
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(outcome=train(cfg)), daemon=True)
    rng = random.Random(seed)
    kills: list[dict[str, Any]] = []
    begin = time.perf_counter()
    thread.start()
    watches = [_AttemptWatch(run_dir, rank) for rank in range(WORKERS)]
    killed: set[int] = set()
    while thread.is_alive():
        thread.join(timeout=1.0)
        for watch in watches:
            watch.poll()
        rank = rng.randrange(WORKERS)
        watch = watches[rank]
        # each attempt trains for kill_every seconds, and past a checkpoint, before its worker is killed
        if not thread.is_alive() or watch.pid is None or watch.pid in killed or watch.trained <= checkpoint_every:
            continue
        if time.time() - watch.since < kill_every:
            continue
        killed.update(w.pid for w in watches if w.pid is not None)  # one kill per attempt: the group restarts
        try:
            os.kill(watch.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        kills.append(
            {"at_s": round(time.perf_counter() - begin, 1), "rank": rank, "pid": watch.pid, "attempt": watch.attempts}
        )
    wall = time.perf_counter() - begin
    report = audit(run_dir)
    final = load_trainer_state(result["outcome"].checkpoint)["step"] if "outcome" in result else None
    lineages = [read_lineage(ledger_path(run_dir, r)) for r in range(2)]
    summary = {
        "wall_s": round(wall, 1),
        "planned_steps": steps,
        "final_step": final,
        "kills": kills,
        "attempts": [lin.attempts for lin in lineages],
        "redone_micro_batches": [lin.discarded for lin in lineages],
        "audit_ok": report.ok,
        "audit": report.lines,
        "warmup_steps_per_s": round(rate, 2),
        "checkpoint_every_steps": checkpoint_every,
        "model": f"toy BERT, 4 layers, hidden {hidden}",
        "warmup_run": str(warm.run_dir),
    }
    (out / "soak.json").write_text(json.dumps(summary, indent=2))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="planned length of the run without faults")
    parser.add_argument(
        "--kill-every", type=float, default=180.0, help="seconds each attempt trains before a worker is killed"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/rtrain-soak"), help="work folder (written to)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    s = soak(args.out, args.minutes, args.kill_every, args.seed)
    print(
        f"soak: {s['wall_s'] / 60:.1f} min, {len(s['kills'])} worker kills, attempts per rank {s['attempts']}, "
        f"micro-batches redone {s['redone_micro_batches']}, final step {s['final_step']}/{s['planned_steps']}, "
        f"audit {'clean' if s['audit_ok'] else 'FAILED'} ({args.out / 'soak.json'})"
    )
    return 0 if s["audit_ok"] and s["final_step"] == s["planned_steps"] else 1


if __name__ == "__main__":
    sys.exit(main())
