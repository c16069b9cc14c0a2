"""The one error path for a user's mistake: `UserError` and how the command line shows it.

A `UserError` is something the person running rtrain can fix (a bad key, a malformed row, a missing
file, an unreachable server they named). Its message says where (file and line, row, or the config
key), what is wrong, and the fix. `rtrain/cli.py` catches it, prints `rtrain CMD: error: MESSAGE` on
stderr and exits with `USER_ERROR`; there is no traceback. Anything else is a bug in rtrain and keeps
its traceback. Every command's own error class derives from `UserError`, so a command never prints
errors itself.
"""

from __future__ import annotations

import textwrap

USER_ERROR = 2  # the exit status of a user's mistake (argparse uses 2 for a bad command line too)


class UserError(Exception):
    """A mistake the user can fix; the message names where, what and the fix."""


def problems_message(where: str, problems: list[str], limit: int | None = None) -> str:
    """Every problem at once: `WHERE: PROBLEM` for one (just `PROBLEM` when `where` is ''), a counted list under
    `WHERE` for several, one indented line each (the first `limit`, then how many more)."""
    if len(problems) == 1:
        return f"{where}: {problems[0].strip()}" if where else problems[0].strip()
    shown = [textwrap.indent(p.strip(), "  ") for p in problems[:limit]]
    if limit is not None and len(problems) > limit:
        shown.append(f"  ... and {len(problems) - limit} more")
    return f"{where + ': ' if where else ''}{len(problems)} problem(s):\n" + "\n".join(shown)


def error_line(command: str, err: BaseException) -> str:
    """What the command line prints for `err`: `rtrain CMD: error: MESSAGE`.

    One problem is one line; a message listing several (every unknown key at once) keeps its list,
    one indented line per problem, under the prefixed first line.
    """
    text = str(err).strip() or type(err).__name__
    if isinstance(err, FileNotFoundError) and err.filename is not None:
        text = f"{err.filename}: no such file or folder"
    first, *rest = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join([f"rtrain {command}: error: {first}", *rest])
