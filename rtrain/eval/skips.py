"""Bookkeeping shared by the readers: count skipped rows and report them once per file."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger("rtrain.eval.readers")


class Skips:
    """Collects the skipped rows of one file and reports them in one warning.

    With ``strict=True`` the first skipped row raises instead (naming the file and the row).
    """

    def __init__(self, path: Path, strict: bool) -> None:
        self.path = path
        self.strict = strict
        self.reasons: list[str] = []

    def add(self, where: str, why: str) -> None:
        if self.strict:
            raise ValueError(f"{self.path}: {where}: {why} (strict=True; fix the file or pass strict=False to skip)")
        self.reasons.append(f"{where}: {why}")

    def __len__(self) -> int:
        return len(self.reasons)

    def report(self, total: int) -> int:
        """Log one warning listing the first few skipped rows; return how many were skipped."""
        if self.reasons:
            shown = "; ".join(self.reasons[:5]) + ("; ..." if len(self.reasons) > 5 else "")
            logger.warning("%s: skipped %d of %d rows: %s", self.path, len(self.reasons), total, shown)
        return len(self.reasons)


def existing_dir(path: str | Path, what: str) -> Path:
    """``path`` as a Path, or FileNotFoundError naming ``what`` and the resolved folder."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder {folder.resolve()} does not exist (or is not a directory)")
    return folder
