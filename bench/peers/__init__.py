"""The peers workload: the same one-row job on arq, SAQ, dramatiq, procrastinate and ours.

The peers are the optional ``peers`` dependency group (``uv sync --group bench`` includes
it), so the project's users never install them.
"""

from __future__ import annotations

from importlib.util import find_spec

PACKAGES = ("saq", "dramatiq", "procrastinate")
INSTALL = "uv sync --group bench"


class NotRunnable(Exception):
    """The peers workload cannot run here: the message says why (the bench goes on)."""


class PeersMissing(NotRunnable):
    """The peers group is not installed: the message says how to get it."""


def require() -> None:
    missing = [name for name in PACKAGES if find_spec(name) is None]
    if missing:
        raise PeersMissing(
            f"the peers workload needs {', '.join(missing)}: install them with `{INSTALL}`"
        )
