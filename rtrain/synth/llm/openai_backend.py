"""`OpenAIBackend`: chat completions over HTTP from any OpenAI-compatible server (vLLM, Ray Serve LLM, ...).

One POST to `<base_url>/chat/completions` per prompt, `concurrency` of them in flight (a thread
pool), each with its own `seed` (vLLM honours per-request seeds, so replies are reproducible).
Connection errors, timeouts, 429 and 5xx are retried with exponential backoff; other HTTP errors
(401, 404 for a wrong model, 400) stop the run at once with the server's message. The Authorization
header carries the key from the environment variable named by `api_key_env`; it is never logged, never
follows a redirect (a 3xx is an error naming the new address), and is refused over plain http to a host
other than this machine unless `allow_insecure_http`. Each request has a deadline (`timeout_s` for the
whole request, not per socket read) and a reply size limit (`max_response_mb`).
Standard library only (urllib); proxies from the environment apply except for loopback hosts.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException
from typing import Any

from rtrain.synth.llm.backends import BackendError
from rtrain.synth.llm.config import BackendConfig
from rtrain.transport import cleartext_host, is_loopback

log = logging.getLogger(__name__)
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 60.0
READ_CHUNK = 64 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib would re-send the Authorization header to the new host."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        raise BackendError(
            f"POST {req.full_url} -> HTTP {code} redirect to {newurl}; rtrain does not follow redirects (the key "
            "would travel with it): set backend.base_url to the final address"
        )


class OpenAIBackend:
    """Replies from `<base_url>/chat/completions`; `stats()` counts requests, retries and tokens."""

    def __init__(self, cfg: BackendConfig) -> None:
        self.cfg = cfg
        self.url = f"{cfg.base_url}/chat/completions"
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env, "")
            if not key:
                raise BackendError(
                    f"environment variable {cfg.api_key_env} (backend.api_key_env) is not set or empty: "
                    "export the API key in it, or set backend.api_key_env: null for a server without auth"
                )
            self._headers["Authorization"] = f"Bearer {key}"
        host = cleartext_host(self.url)
        if "Authorization" in self._headers and host is not None and not cfg.allow_insecure_http:
            raise BackendError(
                f"backend.base_url {cfg.base_url}: plain http would send the API key in clear text to {host}; "
                "use https://, or set backend.allow_insecure_http: true on a network you trust"
            )
        handlers: list[Any] = [_NoRedirect()]
        if is_loopback(self.url):
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)
        self._max_bytes = int(cfg.max_response_mb * 1024**2)
        self._lock = threading.Lock()
        self._counts = {"requests": 0, "http_retries": 0, "prompt_tokens": 0, "completion_tokens": 0}

    @property
    def model_name(self) -> str:
        """The served model name, as sent in every request."""
        return self.cfg.model

    def generate(
        self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float, seeds: Sequence[int]
    ) -> list[str]:
        """Replies in prompt order; BackendError if any request still fails after its retries."""
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds; give one seed per prompt")
        if not prompts:
            return []

        def one(item: tuple[str, int]) -> str:
            return self._complete(item[0], item[1], max_new_tokens, temperature)

        workers = min(self.cfg.concurrency, len(prompts))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rtrain-llm") as pool:
            return list(pool.map(one, zip(prompts, seeds)))

    def stats(self) -> dict[str, Any]:
        """Requests sent, transport retries and the server's token usage."""
        with self._lock:
            return {"kind": "openai", "base_url": self.cfg.base_url, **self._counts}

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def _complete(self, prompt: str, seed: int, max_new_tokens: int, temperature: float) -> str:
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "seed": int(seed),
        }
        if self.cfg.json_mode:
            body["response_format"] = {"type": "json_object"}
        data = json.dumps(body).encode("utf-8")
        problem = ""
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self._count("http_retries")
                time.sleep(min(self.cfg.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
            self._count("requests")
            request = urllib.request.Request(self.url, data=data, headers=self._headers, method="POST")
            try:
                deadline = time.monotonic() + self.cfg.timeout_s
                with self._opener.open(request, timeout=self.cfg.timeout_s) as response:
                    payload = self._read(response, deadline)
            except urllib.error.HTTPError as err:
                detail = err.read()[:300].decode("utf-8", "replace").strip()
                if err.code not in RETRY_STATUS:
                    hint = ""
                    if err.code in (401, 403):
                        env = self.cfg.api_key_env
                        hint = (
                            f"; check the key in ${env}" if env else "; the server wants a key: set backend.api_key_env"
                        )
                    raise BackendError(f"POST {self.url} -> HTTP {err.code}: {detail or err.reason}{hint}") from None
                problem = f"HTTP {err.code}: {detail or err.reason}"
            except (OSError, HTTPException) as err:  # URLError, timeouts, resets, bad status lines
                problem = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
            else:
                return self._content(payload)
            tries = self.cfg.max_retries + 1
            log.warning("POST %s failed (%s); attempt %d of %d", self.url, problem, attempt + 1, tries)
        raise BackendError(
            f"POST {self.url} failed {self.cfg.max_retries + 1} time(s), last: {problem}; check that the server "
            "is up and reachable (backend.base_url), or raise backend.max_retries / backend.timeout_s"
        )

    def _read(self, response: Any, deadline: float) -> bytes:
        """The body, read in chunks: TimeoutError past the request's deadline (a retry), BackendError past the
        size limit (no retry: the same request would get the same reply)."""
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(READ_CHUNK):  # what has arrived; read(n) would wait for n bytes
            size += len(chunk)
            if size > self._max_bytes:
                raise BackendError(
                    f"POST {self.url}: the reply exceeds backend.max_response_mb={self.cfg.max_response_mb:g}; "
                    "lower max_new_tokens or raise the limit"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the reply took longer than backend.timeout_s={self.cfg.timeout_s:g}")
            chunks.append(chunk)
        return b"".join(chunks)

    def _content(self, payload: bytes) -> str:
        """The first choice's message text; BackendError if the body is not a chat completion."""
        try:
            reply = json.loads(payload)
            content = reply["choices"][0]["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise BackendError(
                f"POST {self.url} answered {payload[:200]!r}, not a chat completion; is base_url an "
                "OpenAI-compatible /v1 endpoint?"
            ) from None
        usage = reply.get("usage") or {}
        for key in ("prompt_tokens", "completion_tokens"):
            if isinstance(usage.get(key), int):
                self._count(key, usage[key])
        return content if isinstance(content, str) else ""
