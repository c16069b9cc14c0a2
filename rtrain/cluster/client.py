"""A `ray.job_submission.JobSubmissionClient` for a cluster's dashboard address, with clear errors.

Ray 2.60 clusters use token authentication; the SDK on its own sends the token only when
`RAY_AUTH_MODE=token` was set before Ray was imported. `connect` sends it whenever a token is
available (`RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token`) unless
`RAY_AUTH_MODE=disabled`, so `rtrain submit` and `rtrain jobs` work without extra setup.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rtrain.errors import UserError
from rtrain.transport import cleartext_host

ADDRESS_ENV = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
START_HINT = (
    "start a local two-node cluster with `cluster/local.sh up` (it prints the address); for a remote head, reach its "
    "dashboard (port 8265) through an SSH tunnel (`ssh -L 8265:127.0.0.1:8265 HEAD`, then http://127.0.0.1:8265) or "
    "an https proxy, rather than exposing it with --dashboard-host=0.0.0.0"
)


class ClusterError(UserError, RuntimeError):
    """The cluster cannot be reached or refused a request; the message names the address and the fix."""


def resolve_address(address: str | None) -> str:
    """`--address`, else $RAY_API_SERVER_ADDRESS / $RAY_ADDRESS, as an http(s) URL."""
    value = address or next((os.environ[name] for name in ADDRESS_ENV if os.environ.get(name)), None)
    if not value:
        raise ClusterError(f"no cluster address: pass --address http://HEAD:8265 or set RAY_ADDRESS; {START_HINT}")
    if value.startswith("ray://"):
        raise ClusterError(
            f"--address {value}: that is a Ray Client address; jobs go to the dashboard, http://HEAD:8265"
        )
    return value if "://" in value else f"http://{value}"


def auth_headers() -> dict[str, str]:
    """`Authorization: Bearer <token>` when a Ray token is available and auth is not turned off.

    The token comes from RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH names, or ~/.ray/auth_token,
    the order Ray uses. Passing the header ourselves keeps this process's Ray config untouched.
    """
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return {}
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if not token:
        path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token").expanduser()
        if path.is_file():
            token = path.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def check_transport(url: str, headers: dict[str, str], allow_insecure_http: bool = False) -> None:
    """Refuse to send a token in clear text: plain http to a host other than this machine needs the opt-in."""
    host = cleartext_host(url)
    if headers and host is not None and not allow_insecure_http:
        raise ClusterError(
            f"{url}: plain http would send your Ray token in clear text to {host}; use https://, or an SSH "
            f"tunnel (ssh -L 8265:127.0.0.1:8265 {host}, then --address http://127.0.0.1:8265), "
            "or pass --allow-insecure-http on a network you trust"
        )


def connect(address: str | None, allow_insecure_http: bool = False) -> tuple[Any, str]:
    """(JobSubmissionClient, address); ClusterError naming the address when it is unreachable or unsafe."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    headers = auth_headers()
    check_transport(url, headers, allow_insecure_http)
    try:
        return JobSubmissionClient(url, headers=headers), url
    except ConnectionError as err:
        raise ClusterError(
            f"cannot reach a Ray cluster's dashboard at {url}: {_first_line(err)}; {START_HINT}"
        ) from None
    except AuthenticationError as err:
        raise ClusterError(
            f"{url} refused the connection: {_first_line(err)}. Put the cluster's token in RAY_AUTH_TOKEN "
            "or ~/.ray/auth_token (the cluster's `ray get-auth-token` prints it)"
        ) from None
    except (RuntimeError, ValueError) as err:
        raise ClusterError(f"cannot use the Ray cluster at {url}: {type(err).__name__}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0].rstrip(".") if text else type(err).__name__
