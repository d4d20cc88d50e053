"""dask-gateway: a cluster's gateway client closed once, quietly."""

from __future__ import annotations

from typing import Any

CHECKED_WITH = "2026.3.0"


def closed_for_good(gateway: Any) -> None:
    """dask-gateway 2026.3: Gateway.close is not idempotent and __del__ calls it again,
    printing a traceback ("loop is not running") when the client is collected. Called
    after the cluster (and with it the gateway) is closed: a second close does nothing."""
    gateway.close = lambda: None
