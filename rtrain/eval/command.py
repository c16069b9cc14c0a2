"""CLI glue: ``rtrain eval MODEL [MODEL ...] --suite SUITE.yaml --out DIR [--mteb TASKS] [--set KEY=VALUE]``.

MODEL is ``[NAME=]PATH``: an exported sentence-transformers folder, an rtrain run dir or checkpoint
folder, a Hugging Face model folder or ``pkg://module/subdir`` (see :mod:`rtrain.eval.encoders`).
``--suite`` runs local tasks (:mod:`rtrain.eval.suite`) and prints the summary; ``--mteb`` runs hub
tasks (comma-separated task names, or one benchmark name) through ``mteb.evaluate``. Hub tasks need
the Hugging Face hub: it is probed first (``--hub-timeout`` seconds) so an offline machine fails in
seconds with a clear message instead of hanging; with ``HF_HUB_OFFLINE=1`` only locally cached
datasets can load, and a task that is not cached fails the same way. Task data (local and hub) is
loaded before any model, so data problems surface first. Each model encodes at its own lengths (a run
at its job's, a package or folder at its own ``max_seq_length``); the command says so when they differ, and
``--max-length Q,P`` encodes them all at the same lengths.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rtrain.config.load import ConfigError
from rtrain.errors import UserError

logger = logging.getLogger(__name__)

HUB_ENDPOINT = "https://huggingface.co"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


class HubUnreachableError(UserError, ConnectionError):
    """The Hugging Face hub cannot be used, so mteb hub tasks cannot load their data."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``eval`` subcommand's options on ``parser``."""
    parser.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="[NAME=]PATH: sentence-transformers folder, rtrain run dir / checkpoint, "
        "Hugging Face model folder or pkg://module/subdir",
    )
    parser.add_argument("--suite", type=Path, default=None, help="eval suite YAML, e.g. jobs/suites/quick.yaml")
    parser.add_argument(
        "--out", type=Path, required=True, help="results folder (<out>/<model>/<Task>.json, summary.md)"
    )
    parser.add_argument(
        "--mteb",
        default=None,
        metavar="TASKS",
        help="mteb hub tasks: 'STS17,SciFact' or a benchmark name such as 'MTEB(eng, v2)'",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="suite override, e.g. --set tasks.0.limit=20 (repeatable)",
    )
    parser.add_argument(
        "--pooling",
        choices=["mean", "cls", "last_token"],
        default=None,
        help="pooling for Hugging Face folders and pkg:// models (default mean)",
    )
    parser.add_argument(
        "--max-length",
        default=None,
        metavar="Q[,P]",
        help="encode every model's queries at Q and passages at P tokens (one number: both), so that models "
        "are compared at equal lengths (default: each model's own, e.g. a trained run's job lengths)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="encode batch size for --mteb (default 32)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice); 1 is often fastest on a busy small machine",
    )
    parser.add_argument(
        "--ray-workers",
        type=int,
        default=0,
        metavar="N",
        help="encode with N model replicas as a Ray Data job (large corpora, clusters)",
    )
    parser.add_argument("--ray-gpu", action="store_true", help="with --ray-workers: one GPU per replica")
    parser.add_argument(
        "--ray-cpus-per-worker",
        type=float,
        default=1.0,
        help="with --ray-workers: CPUs each replica reserves (0.5 on a 2-CPU machine)",
    )
    parser.add_argument("--hub-timeout", type=float, default=3.0, help="seconds to wait for the hub probe (default 3)")


def parse_model_args(specs: list[str]) -> dict[str, str]:
    """``["base=pkg://x/model", "runs/a"]`` -> ``{"base": "pkg://x/model", "a": "runs/a"}`` (names made unique)."""
    from rtrain.eval.encoders import default_model_name

    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or "/" in name or name.startswith("pkg:"):
            name, path = default_model_name(spec), spec
        unique, i = name, 2
        while unique in out:
            unique, i = f"{name}-{i}", i + 1
        out[unique] = path
    return out


def _offline_env() -> str | None:
    for var in OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return var
    return None


def check_hub(timeout: float = 3.0) -> None:
    """Raise :class:`HubUnreachableError` unless the hub answers within ``timeout`` seconds.

    The request runs in a daemon thread, so even a DNS lookup that never returns cannot block longer.
    """
    endpoint = os.environ.get("HF_ENDPOINT", HUB_ENDPOINT).rstrip("/")
    outcome: dict[str, Any] = {}

    def probe() -> None:
        try:
            with urllib.request.urlopen(f"{endpoint}/api/models?limit=1", timeout=timeout) as response:
                outcome["status"] = response.status
        except (urllib.error.URLError, OSError, RuntimeError, ValueError) as err:
            outcome["error"] = f"{type(err).__name__}: {err}"

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if "status" not in outcome:
        reason = outcome.get("error", f"no answer within {timeout:g} s")
        raise HubUnreachableError(
            f"the Hugging Face hub ({endpoint}) is unreachable ({reason}); --mteb downloads task data from it. "
            "Run where the hub is reachable, set HF_HUB_OFFLINE=1 to use datasets already in the local HF cache, "
            "or evaluate local data with --suite"
        )


def load_mteb_tasks(spec: str, timeout: float) -> list[Any]:
    """Resolve ``spec`` to mteb tasks and load their data now (failing fast when the hub is unusable)."""
    offline = _offline_env()
    if offline is None:
        check_hub(timeout)
    import mteb

    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise ConfigError(f"--mteb {spec!r} names no task; give e.g. 'STS17,SciFact' or a benchmark name")
    try:  # a benchmark name may itself hold commas: "MTEB(eng, v2)"
        tasks = (
            list(mteb.get_benchmark(spec.strip()).tasks)
            if _is_benchmark(spec.strip())
            else list(mteb.get_tasks(tasks=names))
        )
    except (KeyError, ValueError) as err:
        raise ConfigError(f"--mteb {spec!r}: {err}; see mteb.get_tasks() / mteb.get_benchmarks() for names") from None
    if not tasks:
        raise ConfigError(f"--mteb {spec!r} selects no mteb task")
    # Loading the first task's data proves the hub (or the local cache) works before any model loads;
    # mteb.evaluate loads the others one by one, as it always does.
    try:
        tasks[0].load_data()
    except Exception as err:  # noqa: BLE001 -- datasets / hub raise many types; all mean the same here
        raise _hub_error(tasks[0], err, offline) from None
    return tasks


def _hub_error(task: Any, err: BaseException, offline: str | None) -> HubUnreachableError:
    why = f"{offline}=1 is set and the dataset is not in the local HF cache" if offline else "the hub failed"
    return HubUnreachableError(
        f"mteb task {task.metadata.name}: its data ({task.metadata.dataset.get('path')}) could not be loaded: "
        f"{why} ({type(err).__name__}: {str(err)[:300]}). Run where the hub is reachable, or evaluate local "
        "data with --suite"
    )


def _is_benchmark(name: str) -> bool:
    import mteb

    try:
        mteb.get_benchmark(name)
    except (KeyError, ValueError):
        return False
    return True


def _run_mteb(tasks: list[Any], models: dict[str, Any], out: Path, batch_size: int) -> str:
    import mteb

    from rtrain.eval.mteb_bridge import MtebEncoder

    lines = [
        "## mteb hub tasks (main_score)",
        "",
        "| task | " + " | ".join(models) + " |",
        "|---|" + "---:|" * len(models),
    ]
    scores: dict[str, dict[str, float]] = {}
    for name, encoder in models.items():
        try:
            result = mteb.evaluate(
                MtebEncoder(encoder, name=name),
                tasks,
                cache=mteb.ResultCache(out / "mteb"),
                encode_kwargs={"batch_size": batch_size},
                overwrite_strategy="always",
                show_progress_bar=False,
            )
        except (ConnectionError, OSError) as err:  # a later task's data failed to download
            raise HubUnreachableError(f"mteb.evaluate stopped: {type(err).__name__}: {str(err)[:300]}") from None
        for task_result in result.task_results:
            scores.setdefault(task_result.task_name, {})[name] = task_result.get_score()
    for task, by_model in scores.items():
        lines.append(f"| {task} | " + " | ".join(f"{by_model.get(m, float('nan')):.4f}" for m in models) + " |")
    summary = "\n".join(lines)
    (out / "mteb_summary.md").write_text(summary + "\n", encoding="utf-8")
    return summary


def parse_max_length(text: str) -> tuple[int, int]:
    """``--max-length`` as (query, passage) tokens: ``"128"`` or ``"48,128"``; a ConfigError otherwise."""
    parts = text.split(",")
    if len(parts) > 2 or not all(p.strip().isdigit() and int(p) >= 4 for p in parts):
        raise ConfigError(f"--max-length {text!r}: give Q or Q,P, token counts of at least 4 (e.g. 48,128)")
    query, passage = int(parts[0]), int(parts[-1])
    return query, passage


def length_note(models: dict[str, Any]) -> str | None:
    """One line when the models encode at different lengths (their scores then mix in truncation), else None."""
    from rtrain.eval.encoders import encode_lengths

    lengths = {name: encode_lengths(model) for name, model in models.items()}
    known = {name: ql for name, ql in lengths.items() if ql is not None}
    if len(set(known.values())) < 2:
        return None
    listed = ", ".join(f"{name} {q}/{p}" for name, (q, p) in known.items())
    return (
        f"note: the models encode at different lengths (query/passage tokens: {listed}), so their scores mix in "
        "truncation; --max-length Q,P compares them at equal lengths"
    )


def run(args: argparse.Namespace) -> int:
    """Run the suite and / or mteb tasks for every model; print the summary. Returns the exit code."""
    from rtrain.eval.encoders import load_encoder, with_lengths
    from rtrain.eval.suite import build_tasks, load_suite, run_suite

    if args.suite is None and not args.mteb:
        raise ConfigError("needs --suite SUITE.yaml (local tasks) and/or --mteb TASKS (hub tasks)")
    if args.overrides and args.suite is None:
        raise ConfigError("--set overrides apply to a suite: give --suite too")
    specs = parse_model_args(args.models)
    lengths = parse_max_length(args.max_length) if args.max_length else None
    if lengths and args.ray_workers:
        raise ConfigError("--max-length applies to models loaded here: drop --ray-workers, or --max-length")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads {args.threads}: give a positive number of CPU threads")
        import torch

        torch.set_num_threads(args.threads)
    suite = load_suite(args.suite, args.overrides) if args.suite else None
    try:
        built = build_tasks(suite) if suite else None
    except ValueError as err:  # unusable data (nothing left after skips, unaligned files, ...)
        raise ConfigError(f"suite {args.suite}: {err}") from None
    hub_tasks = load_mteb_tasks(args.mteb, args.hub_timeout) if args.mteb else None
    if args.ray_workers:
        from rtrain.eval.ray_encode import RayDataEncoder

        models = {
            name: RayDataEncoder(
                path,
                args.ray_workers,
                pooling=args.pooling,
                use_gpu=args.ray_gpu,
                cpus_per_worker=args.ray_cpus_per_worker,
            )
            for name, path in specs.items()
        }
    else:
        models = {name: load_encoder(path, pooling=args.pooling) for name, path in specs.items()}
        if lengths:
            try:
                models = {name: with_lengths(model, *lengths) for name, model in models.items()}
            except ValueError as err:
                raise ConfigError(str(err)) from None
        if note := length_note(models):
            print(note)
    args.out.mkdir(parents=True, exist_ok=True)
    if suite is not None:
        outcome = run_suite(suite, models, args.out, built=built)
        print(outcome["summary"])
    if hub_tasks is not None:
        print(_run_mteb(hub_tasks, models, args.out, args.batch_size or 32))
    print(f"results: {args.out}")
    return 0
