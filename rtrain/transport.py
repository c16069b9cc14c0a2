"""The one rule for sending a secret over HTTP: never in clear text to another machine unless asked.

`rtrain submit` / `rtrain jobs` (the Ray token) and the LLM client (the API key) both ask
`cleartext_host(url)` before a secret leaves, and word the refusal for their own opt-in.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(url: str) -> bool:
    """`url` points at this machine."""
    return (urlsplit(url).hostname or "") in LOOPBACK


def cleartext_host(url: str) -> str | None:
    """The host a secret sent to `url` would reach unencrypted (plain http, not this machine), else None."""
    parts = urlsplit(url)
    return parts.hostname if parts.scheme == "http" and not is_loopback(url) else None
