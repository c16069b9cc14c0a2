"""CLI glue: `rtrain synth-llm --config LLM.yaml --out DIR [key=value ...]`.

The config file holds `LLMSynthConfig` fields at top level (see jobs/synth/llm-vllm.yaml); each
`key=value` override is YAML (`languages=[en,de]`, `backend.concurrency=64`, `seed=3`). Prints
rows per task type and language, skips by reason and timings. Exit status: 0 with rows written,
1 if no example was valid (see `invalid_samples` in the manifest), 2 on a bad config or a backend
that cannot serve.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rtrain.config.load import resolve
from rtrain.synth.llm.config import LLMSynthConfig
from rtrain.synth.llm.generate import generate_llm


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `synth-llm` subcommand's options on `parser`."""
    parser.add_argument("--config", required=True, type=Path, help="YAML with LLMSynthConfig fields")
    parser.add_argument("--out", required=True, type=Path, help="output folder for train.parquet + manifest.json")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides, values parsed as YAML, e.g. languages=[en,de] backend.concurrency=32",
    )


def load_config(path: Path, overrides: list[str]) -> LLMSynthConfig:
    """The validated config from a YAML file plus overrides; ConfigError lists every problem."""
    return resolve(LLMSynthConfig, path, overrides)


def _print_summary(manifest: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rtrain synth-llm -> {out} ({manifest['source']})")
    table.add_column("task type")
    table.add_column("requested", justify="right")
    table.add_column("generated", justify="right")
    for name, counts in manifest["by_task_type"].items():
        table.add_row(name, f"{counts['requested']:,}", f"{counts['generated']:,}")
    totals = (f"[bold]{manifest[key]:,}[/bold]" for key in ("requested", "generated"))
    table.add_row("[bold]total[/bold]", *totals)
    console = Console()
    console.print(table)
    skipped = ", ".join(f"{reason}={n}" for reason, n in manifest["skipped"].items()) or "none"
    timings = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in manifest["timings_s"].items())
    console.print(f"retried {manifest['retried']}, skipped: {skipped}; {timings}")
    failed = manifest["brainstorm"]["failed"]
    if failed:
        console.print(f"brainstorm gave no valid task list for some task types: {failed}")


def run(args: argparse.Namespace) -> int:
    """Generate per the parsed arguments; see the module docstring for exit codes."""
    manifest = generate_llm(load_config(args.config, args.overrides), args.out)
    _print_summary(manifest, args.out)
    if manifest["generated"] == 0:
        print(
            f"rtrain synth-llm: no valid example in {manifest['attempts']} replies; see invalid_samples in "
            f"{args.out / 'manifest.json'} (a larger or instruction-tuned model, or backend.json_mode: true, helps)",
            file=sys.stderr,
        )
        return 1
    return 0
