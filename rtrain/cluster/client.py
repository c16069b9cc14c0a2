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

ADDRESS_ENV = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
START_HINT = (
    "start a local two-node cluster with `cluster/local.sh up` (it prints the address), or on a cluster's head "
    "`ray start --head --dashboard-host=0.0.0.0`; the address is the dashboard's http://HOST:8265"
)


class ClusterError(RuntimeError):
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


def connect(address: str | None) -> tuple[Any, str]:
    """(JobSubmissionClient, address); ClusterError naming the address when it is unreachable."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    try:
        return JobSubmissionClient(url, headers=auth_headers()), url
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
