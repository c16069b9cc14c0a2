"""Storage paths that are URIs (`s3://`, `gs://`, `file://`, any pyarrow or fsspec filesystem).

Ray Train resolves a URI storage path with `pyarrow.fs.FileSystem.from_uri`, falling back to fsspec
through `pyarrow.fs.PyFileSystem(FSSpecHandler(...))`; this module does the same. rtrain uses it
to copy a run folder to a URI (`sync_tree`, incremental: only files whose size or mtime changed)
and to fetch a run back (`download_tree`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtrain.errors import UserError

_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
NOT_STORAGE_SCHEMES = ("pkg://", "http://", "https://", "ray://")


class StorageError(UserError, RuntimeError):
    """A storage URI that cannot be opened or written; the message names the URI and the fix."""


def is_uri(path: str) -> bool:
    """True for `scheme://...` storage locations (not rtrain's pkg:// model paths)."""
    return bool(_URI.match(path)) and not path.startswith(NOT_STORAGE_SCHEMES)


def join_uri(base: str, *parts: str) -> str:
    """`base` and `parts` joined with single slashes (URIs and POSIX paths alike)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def filesystem(uri: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) for a URI, as Ray Train's storage resolves it."""
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except ValueError as arrow_err:  # pyarrow.ArrowInvalid: a scheme pyarrow does not know; try fsspec
        try:
            import fsspec
            from fsspec.core import split_protocol

            protocol, inner = split_protocol(uri)
            fs = fsspec.filesystem(protocol)
        except (ImportError, ValueError) as err:
            raise StorageError(
                f"cannot open storage URI {uri!r}: pyarrow says {arrow_err}; fsspec says {err}. "
                "Install the filesystem's package (e.g. s3fs, gcsfs) or use a path on shared storage"
            ) from None
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), inner
    except OSError as err:
        raise StorageError(f"cannot open storage URI {uri!r}: {err}; check the credentials and the bucket") from None


@dataclass
class SyncState:
    """What `sync_tree` already uploaded: relative path -> (size, mtime_ns)."""

    seen: dict[str, tuple[int, int]] = field(default_factory=dict)


def sync_tree(local: Path, uri: str, state: SyncState | None = None) -> int:
    """Copy files under `local` to `uri` (same relative layout) that changed since the last call.

    Returns the number of files copied. Files that vanish while copying (a checkpoint being
    rotated) are skipped; the next call picks up whatever exists then.
    """
    import pyarrow.fs as pafs

    state = state or SyncState()
    if not local.is_dir():
        return 0
    fs, root = filesystem(uri)
    local_fs = pafs.LocalFileSystem()
    copied = 0
    for dirpath, _, files in os.walk(local):
        for name in sorted(files):
            path = Path(dirpath) / name
            rel = path.relative_to(local).as_posix()
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            key = (st.st_size, st.st_mtime_ns)
            if state.seen.get(rel) == key:
                continue
            target = f"{root.rstrip('/')}/{rel}"
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            try:
                pafs.copy_files(str(path), target, source_filesystem=local_fs, destination_filesystem=fs)
            except FileNotFoundError:
                continue
            state.seen[rel] = key
            copied += 1
    return copied


def download_tree(uri_or_path: str, out: Path) -> Path:
    """Copy a run folder (a URI or a local path) to `out`; StorageError if it does not exist."""
    import pyarrow.fs as pafs

    if is_uri(uri_or_path):
        fs, root = filesystem(uri_or_path)
    else:
        fs, root = pafs.LocalFileSystem(), str(Path(uri_or_path).expanduser().resolve())
    info = fs.get_file_info(root)
    if info.type != pafs.FileType.Directory:
        raise StorageError(f"{uri_or_path} is not a folder (nothing there yet, or the run wrote elsewhere)")
    out.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(root, str(out.resolve()), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    return out
