"""CLI glue: `rtrain synth --out DIR [--config SYNTH.yaml] [key=value ...]`.

The config file holds `SynthConfig` fields at top level (or under a `synth:` key); each `key=value`
override is parsed with yaml.safe_load, so `languages=[en,de]`, `languages=4`, `seed=7` and
`cross_lingual_rate=0.3` all work. Prints a table of row counts per task and split.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rtrain.config.load import ConfigError, load_yaml, resolve
from rtrain.synth.config import SynthConfig
from rtrain.synth.generate import RAY_ROW_THRESHOLD, generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `synth` subcommand's options on `parser`."""
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder for train/heldout.parquet + manifest.json"
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML with SynthConfig fields (top level or under 'synth:')"
    )
    parser.add_argument(
        "--ray-threshold",
        type=int,
        default=None,
        help=f"total rows above which shards run on Ray Data (default {RAY_ROW_THRESHOLD:,})",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="SynthConfig field overrides, values parsed as YAML, e.g. languages=[en,de] seed=3",
    )


def load_config(path: Path | None, overrides: list[str]) -> SynthConfig:
    """SynthConfig from an optional YAML file (fields at top level or under `synth:`) plus overrides."""
    data: dict[str, Any] = {}
    where = "synth config"
    if path is not None:
        loaded = load_yaml(path)
        data = dict(loaded["synth"]) if isinstance(loaded.get("synth"), dict) else loaded
        where = str(path)
    return resolve(SynthConfig, data, overrides, where=where)


def _print_summary(manifest: dict[str, Any], out: Path) -> None:
    """A short rich table: rows per task for each split, then totals."""
    from rich.console import Console
    from rich.table import Table

    splits = manifest["splits"]
    table = Table(title=f"rtrain synth -> {out}")
    table.add_column("task")
    for split in splits:
        table.add_column(split, justify="right")
    tasks = sorted({task for info in splits.values() for task in info["by_task"]})
    for task in tasks:
        table.add_row(task, *(f"{info['by_task'].get(task, 0):,}" for info in splits.values()))
    table.add_row("[bold]total[/bold]", *(f"[bold]{info['rows']:,}[/bold]" for info in splits.values()))
    table.add_row("cross-lingual", *(f"{info['cross_lingual_rows']:,}" for info in splits.values()))
    console = Console()
    console.print(table)
    langs = manifest["config"]["languages"]
    console.print(f"{len(langs)} languages, seed {manifest['seed']}, engine {manifest['engine']}")


def run(args: argparse.Namespace) -> int:
    """Generate per the parsed arguments; 0 on success, 2 on a bad config or template."""
    cfg = load_config(args.config, args.overrides)
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a file; name a folder for train/heldout.parquet")
    manifest = generate(cfg, args.out, ray_threshold=args.ray_threshold)
    _print_summary(manifest, args.out)
    return 0
