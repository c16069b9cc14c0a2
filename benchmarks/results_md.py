"""benchmarks/RESULTS.md: each benchmark owns one `## <name>` section and rewrites only that one."""

from __future__ import annotations

import re
import time
from pathlib import Path


def write_section(path: Path, name: str, text: str) -> None:
    """Replace the `## <name>` section of `path` (up to the next `## `) with `text`, or append it."""
    old = path.read_text() if path.is_file() else "# Benchmark results\n"
    match = re.search(rf"^## {re.escape(name)}[ \t]*\n.*?(?=^## |\Z)", old, flags=re.S | re.M)
    if match:
        rest = old[match.end() :]
        new = old[: match.start()] + text.rstrip() + "\n" + ("\n" + rest if rest.strip() else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text.rstrip() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def table_section(
    name: str,
    run: str,
    method: str,
    columns: list[str],
    rows: list[list[str]],
    machine: str = "this 2-core CPU machine",
) -> str:
    """A `## <name>` section: how it was run (`run`, stamped with the date and `machine`), the script's method
    paragraph (`method`, reflowed to one line), and a table; a column named with a trailing ':' is right-aligned."""
    header = "| " + " | ".join(c.rstrip(":") for c in columns) + " |"
    rule = "|" + "|".join("---:" if c.endswith(":") else "---" for c in columns) + "|"
    body = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    intro = f"{run}, {time.strftime('%Y-%m-%d %H:%M')}, {machine}. {' '.join(method.split())}"
    return f"## {name}\n\n{intro}\n\n{header}\n{rule}\n{body}\n"
