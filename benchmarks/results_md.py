"""benchmarks/RESULTS.md: each benchmark owns one `## <name>` section and rewrites only that one."""

from __future__ import annotations

import re
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
