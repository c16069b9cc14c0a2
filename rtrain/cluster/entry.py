"""In-cluster entrypoint wrapper: `python -m rtrain.cluster.entry [options] -- COMMAND ...`.

`rtrain submit` uses it only when a plain `python -m rtrain.cli train|run|tune FILE` cannot do:

- `--config-b64 TEXT --config-file NAME`: the validated YAML travels in the entrypoint (a container
  image job has no working_dir to carry it); it is written to a temporary folder and `{config}` in
  COMMAND is replaced by its path;
- `--sync-from DIR --sync-to URI`: the run's outputs go to a storage URI; every `--sync-every`
  seconds and once at the end, files under DIR that changed are copied to URI.

The exit status is COMMAND's (or 3 when the final upload failed), so Ray reports the job as failed
exactly when training or the upload failed.
"""

from __future__ import annotations

import argparse
import base64
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from rtrain.cluster.storage import StorageError, SyncState, sync_tree


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rtrain.cluster.entry", description=__doc__)
    p.add_argument("--config-b64", help="the job YAML, base64 (urlsafe) encoded")
    p.add_argument("--config-file", default="job.yaml", help="file name for --config-b64's YAML")
    p.add_argument("--sync-from", type=Path, help="local folder the command writes its outputs to")
    p.add_argument("--sync-to", help="storage URI that receives a copy of --sync-from")
    p.add_argument("--sync-every", type=float, default=300.0, help="seconds between uploads while running")
    p.add_argument(
        "command", nargs=argparse.REMAINDER, help="-- then the command, e.g. python -m rtrain.cli train {config}"
    )
    return p


def _sync_loop(source: Path, uri: str, every: float, state: SyncState, stop: threading.Event) -> None:
    """Upload changed files every `every` seconds until `stop` is set; errors are reported, not fatal."""
    while not stop.wait(every):
        try:
            copied = sync_tree(source, uri, state)
            if copied:
                print(f"rtrain.cluster.entry: uploaded {copied} file(s) to {uri}", flush=True)
        except (OSError, StorageError) as err:
            print(f"rtrain.cluster.entry: upload to {uri} failed (will retry): {err}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the wrapped command with the config and upload options; its exit status."""
    args = _parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("rtrain.cluster.entry: no command after --", file=sys.stderr)
        return 2
    if (args.sync_from is None) != (args.sync_to is None):
        print("rtrain.cluster.entry: give both --sync-from and --sync-to, or neither", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rtrain-entry-") as tmp:
        if args.config_b64:
            path = Path(tmp) / args.config_file
            path.write_bytes(base64.urlsafe_b64decode(args.config_b64.encode("ascii")))
            command = [part.replace("{config}", str(path)) for part in command]
        state, stop = SyncState(), threading.Event()
        syncer = None
        if args.sync_from is not None:
            args.sync_from.mkdir(parents=True, exist_ok=True)
            syncer = threading.Thread(
                target=_sync_loop, args=(args.sync_from, args.sync_to, args.sync_every, state, stop), daemon=True
            )
            syncer.start()
        child = subprocess.Popen(command)
        # `ray job stop` signals the process group; pass a lone SIGTERM/SIGINT on to the command too.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
        code = child.wait()
        stop.set()
        if syncer is not None:
            syncer.join()
            try:
                copied = sync_tree(args.sync_from, args.sync_to, state)
                print(
                    f"rtrain.cluster.entry: outputs in {args.sync_to} ({copied} file(s) in the last upload)", flush=True
                )
            except (OSError, StorageError) as err:
                print(f"rtrain.cluster.entry: final upload to {args.sync_to} failed: {err}", file=sys.stderr)
                return code or 3
    return code


if __name__ == "__main__":
    sys.exit(main())
