"""What `rtrain run`, `train` and `tune` print: rtrain's own lines on the console, everything else in a log file.

A `QuietConsole` session (the CLI opens one unless `-v`) points file descriptors 1 and 2, and Python's
`sys.stdout`/`sys.stderr`, at a log file, so library prints, progress bars, Python warnings, C-level output
and the Ray worker lines that Ray forwards to the driver all land there. The terminal keeps:
- log records of the `rtrain`, `rtrain.pipeline` and `rtrain.tune` loggers (stage and trial lines) at INFO,
  of any other `rtrain.*` logger at WARNING, and of any logger at ERROR;
- what `show()` prints (result tables, the run dir);
- the train stage's progress bar (`rtrain.train.progress`).

Until a run names its log file (`attach_log`: `<workdir>/rtrain.log` for a pipeline, `<run dir>/rtrain.log`
for `rtrain train`, `<study folder>/rtrain.log` for `rtrain tune`) the output is buffered in a temporary file,
then copied into the log. Without a session every function here falls back to plain printing, so library
callers (tests, Tune trials) see no change.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TextIO

LOG_NAME = "rtrain.log"
CONSOLE_INFO_LOGGERS = ("rtrain", "rtrain.pipeline", "rtrain.tune")  # loggers whose INFO records are stage lines
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_active: QuietConsole | None = None


def on_console(record: logging.LogRecord) -> bool:
    """Whether a log record belongs on the terminal of a quiet session (it always goes to the log)."""
    if record.levelno >= logging.ERROR:
        return True
    if record.name != "rtrain" and not record.name.startswith("rtrain."):
        return False
    return record.levelno >= logging.WARNING or record.name in CONSOLE_INFO_LOGGERS


class _ConsoleHandler(logging.StreamHandler):
    """Writes records to the terminal, clearing any progress bar drawn there first."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=self.stream):
            super().emit(record)


def _fd_writer(fd: int) -> TextIO:
    """A line-buffered text stream writing to file descriptor `fd` (which a session re-points)."""
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", line_buffering=True)


def _terminal(stream: TextIO, fd: int) -> TextIO:
    """The stream that reaches what `stream` reaches now, surviving `fd` being re-pointed at the log."""
    try:
        uses_fd = stream.fileno() == fd
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        uses_fd = False  # e.g. a test's capture buffer: not a file descriptor
    if not uses_fd:
        return stream
    return io.TextIOWrapper(
        io.FileIO(os.dup(fd), "w"), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )


class QuietConsole:
    """A context manager sending all output but rtrain's own lines to a log file (see the module doc)."""

    def __init__(self, title: str = "rtrain") -> None:
        self.title = title
        self.log_path: Path | None = None
        self.out: TextIO = sys.stdout  # the terminal, set on enter
        self.err: TextIO = sys.stderr
        self._buffer: IO[bytes] | None = None
        self._saved_fds: tuple[int, int] = (-1, -1)
        self._saved_streams: tuple[TextIO, TextIO] = (sys.stdout, sys.stderr)
        self._handlers: list[logging.Handler] = []
        self._root_level = logging.WARNING
        self._color_prefix: str | None = None
        self._rebound: list[tuple[logging.StreamHandler, TextIO]] = []
        self._ray_was_running = False

    @property
    def isatty(self) -> bool:
        """Whether the terminal's stderr is an interactive terminal (draw bars) or a file or pipe (print lines)."""
        try:
            return self.err.isatty()
        except (AttributeError, ValueError):
            return False

    def __enter__(self) -> QuietConsole:
        global _active
        if _active is not None:
            raise RuntimeError("a QuietConsole session is already open")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self._saved_streams = (sys.stdout, sys.stderr)
        self.out, self.err = _terminal(sys.stdout, 1), _terminal(sys.stderr, 2)
        self._saved_fds = (os.dup(1), os.dup(2))
        self._buffer = tempfile.TemporaryFile()
        self._point_fds(self._buffer.fileno())
        sys.stdout, sys.stderr = _fd_writer(1), _fd_writer(2)

        root = logging.getLogger()
        self._root_level = root.level
        root.setLevel(logging.INFO)
        to_log = logging.StreamHandler(sys.stderr)
        to_log.setFormatter(logging.Formatter(LOG_FORMAT))
        to_console = _ConsoleHandler(self.err)
        to_console.setFormatter(logging.Formatter("%(message)s"))
        to_console.addFilter(on_console)
        self._handlers = [to_log, to_console]
        for handler in self._handlers:
            root.addHandler(handler)
        self._rebind_library_handlers()
        logging.captureWarnings(True)
        self._ray_was_running = _ray_running()
        self._color_prefix = os.environ.get("RAY_COLOR_PREFIX")
        os.environ["RAY_COLOR_PREFIX"] = "0"  # Ray's forwarded worker lines, uncoloured in a file
        _active = self
        return self

    def _rebind_library_handlers(self) -> None:
        """Point at the log the stream handlers of loggers that do not propagate to the root logger (libraries'
        own, e.g. transformers' and DeepSpeed's, bound to the terminal at import), and root handlers bound to
        the terminal."""
        terminal = {id(s) for s in (*self._saved_streams, sys.__stdout__, sys.__stderr__) if s is not None}
        root = logging.getLogger()
        for logger in [root, *logging.Logger.manager.loggerDict.values()]:
            if not isinstance(logger, logging.Logger) or (logger is not root and logger.propagate):
                continue
            for handler in logger.handlers:
                if (
                    type(handler) is logging.StreamHandler
                    and handler not in self._handlers
                    and (logger is not root or id(handler.stream) in terminal)
                ):
                    self._rebound.append((handler, handler.stream))
                    handler.setStream(sys.stderr)

    def _point_fds(self, fd: int) -> None:
        """Point file descriptors 1 and 2 at `fd`'s file."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)

    def attach_log(self, path: Path) -> Path:
        """Send the output to `path` (appended, after a header line), starting with what was buffered."""
        if self.log_path is not None:
            return self.log_path
        path = Path(path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            header = f"===== {time.strftime('%Y-%m-%d %H:%M:%S')} {self.title} =====\n"
            os.write(fd, header.encode())
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            if self._buffer is not None:
                self._buffer.seek(0)
                while chunk := self._buffer.read(1 << 20):
                    os.write(fd, chunk)
            self._point_fds(fd)
        finally:
            os.close(fd)
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None
        self.log_path = path
        return path

    def show(self, text: str) -> None:
        """Print `text` on the terminal and into the log."""
        from tqdm import tqdm

        with tqdm.external_write_mode(file=self.out):
            print(text, file=self.out, flush=True)
        print(text, file=sys.stdout, flush=True)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        global _active
        if not self._ray_was_running and _ray_running():
            # A Ray started in the session goes with it: its last forwarded worker lines land in the log,
            # not on the terminal after the session (a Ray running before, e.g. a test's, is left alone).
            import ray

            ray.shutdown()
        _active = None
        logging.captureWarnings(False)
        root = logging.getLogger()
        if error is not None and self.log_path is not None:  # the traceback, in the log too (the caller shows it)
            message = f"rtrain stopped: {kind.__name__ if kind else 'error'}"
            record = logging.LogRecord("rtrain", logging.ERROR, __file__, 0, message, None, (kind, error, tb))
            self._handlers[0].handle(record)
        for handler in self._handlers:
            root.removeHandler(handler)
            handler.flush()
        for handler, stream in self._rebound:
            handler.setStream(stream)
        self._rebound = []
        root.setLevel(self._root_level)
        if self._color_prefix is None:
            os.environ.pop("RAY_COLOR_PREFIX", None)
        else:
            os.environ["RAY_COLOR_PREFIX"] = self._color_prefix
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = self._saved_streams
        for fd, saved in zip((1, 2), self._saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        if self._buffer is not None:  # never attached a log: what was printed belongs on the terminal if it failed
            if error is not None:
                self._buffer.seek(0)
                leftover = self._buffer.read().decode("utf-8", errors="replace")
                if leftover:
                    self.err.write(leftover)
            self._buffer.close()
            self._buffer = None
        for stream in (self.out, self.err):
            stream.flush()
            if stream not in self._saved_streams:
                stream.close()


@contextlib.contextmanager
def plain_logging() -> Iterator[None]:
    """A command that is not quiet: log records at INFO and up go to stderr as bare messages, for the
    command's duration only (`logging.basicConfig` would leave its handler behind in the process)."""
    root = logging.getLogger()
    if root.handlers:  # a host (a test runner, an application) already configured logging: use it
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _ray_running() -> bool:
    """Whether this process has started or joined a Ray (without importing Ray)."""
    ray = sys.modules.get("ray")
    return ray is not None and hasattr(ray, "is_initialized") and ray.is_initialized()


def active() -> QuietConsole | None:
    """The open quiet session, if any."""
    return _active


def attach_log(path: Path) -> Path | None:
    """Send the open quiet session's output to `path` unless it already has a log; None without a session."""
    return _active.attach_log(path) if _active is not None else None


def show(text: str) -> None:
    """Print `text` for the person running rtrain: on the terminal (and into the log) in a quiet session."""
    if _active is not None:
        _active.show(text)
    else:
        print(text, flush=True)
