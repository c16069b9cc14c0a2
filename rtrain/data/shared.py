"""Where the project's shared corpora live (`../shared/data`): the one rule every reader uses.

`$RTRAIN_SHARED_DATA` when set, else `shared/data` next to the checkout that holds this package
(`<repo>/../shared/data`), whatever the current folder: Ray workers and Tune trials run elsewhere.
The folder's README gives each set its role: train or eval.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA_ENV = "RTRAIN_SHARED_DATA"
DEFAULT_SHARED_DATA = "<repo>/../shared/data"


def shared_data_root() -> Path:
    """The shared-data folder (it may not exist on a user's machine: readers say so with this rule)."""
    if os.environ.get(SHARED_DATA_ENV):
        return Path(os.environ[SHARED_DATA_ENV]).expanduser().resolve()
    return Path(__file__).resolve().parents[3] / "shared" / "data"
