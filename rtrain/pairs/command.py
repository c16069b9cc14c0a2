"""CLI glue: `rtrain pairs SOURCE_SPEC [key=value ...] --out DIR`.

SOURCE_SPEC is a YAML `PairsSpec` (`root` + `sources`); overrides use dotted keys with list
indices, e.g. `sources.0.max_rows=1000` or `root=/data/shared`, and go right after SOURCE_SPEC
(argparse takes the positionals in one run). Prints a table of rows per source and
one of skipped counts by reason.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rtrain.pairs.spec import load_spec
from rtrain.pairs.write import MANIFEST, PairsBuild, build_pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `pairs` subcommand's options on `parser`."""
    parser.add_argument("spec", type=Path, help="source spec YAML, e.g. jobs/pairs/shared-corpora.yaml")
    parser.add_argument("--out", required=True, type=Path, help=f"output folder for <source>.parquet + {MANIFEST}")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="spec overrides, e.g. sources.0.max_rows=1000 root=/data"
    )


def _heldout_cell(heldout: dict | None) -> str:
    """'rows (-dropped)': held-out rows and the training candidates dropped for sharing their texts."""
    return f"{heldout['rows']:,} (-{heldout['dropped_for_shared_text']:,})" if heldout else "-"


def print_summary(build: PairsBuild, out: Path, wall: float) -> None:
    """Two rich tables: rows per source (the task and language pairs are in the manifest), then every
    skip reason with its count and first place."""
    from rich.console import Console
    from rich.table import Table

    sources = build.manifest["sources"]
    table = Table(title=f"rtrain pairs -> {out}")
    for name in ("source", "kind", "rows", "lang pairs", "skipped", "> max_rows", "held out", "s"):
        text = name in ("source", "kind")
        table.add_column(name, justify="left" if text else "right", no_wrap=name != "kind", overflow="fold")
    for name, info in sources.items():
        table.add_row(
            name,
            info["kind"],
            f"{info['rows']:,}",
            str(len(info["by_language_pair"])),
            f"{info['skipped_total']:,}",
            f"{info['dropped_by_max_rows']:,}",
            _heldout_cell(info.get("heldout")),
            f"{build.seconds.get(name, 0.0):.1f}",
        )
    console = Console()
    console.print(table)
    skipped = Table(title="skipped (counted per input line, question or candidate pair)")
    root = build.manifest["root"].rstrip("/") + "/"
    for name in ("source", "reason", "count", "first at (under root)"):
        skipped.add_column(
            name, justify="right" if name == "count" else "left", no_wrap=name == "count", overflow="fold"
        )
    for name, info in sources.items():
        for reason, found in info["skipped"].items():
            first = (found["examples"] or [""])[0].replace(root, "")
            skipped.add_row(name, reason, f"{found['count']:,}", first)
    if skipped.row_count:
        console.print(skipped)
    console.print(f"{build.manifest['total_rows']:,} rows in {wall:.1f} s; manifest: {out / MANIFEST}")


def run(args: argparse.Namespace) -> int:
    """Build the pairs per the parsed arguments; 0 on success, 2 on a bad spec or corpus."""
    started = time.perf_counter()
    build = build_pairs(load_spec(args.spec, args.overrides), args.out)
    print_summary(build, args.out, time.perf_counter() - started)
    return 0
