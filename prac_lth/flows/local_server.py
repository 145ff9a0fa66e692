"""Processes a flow starts (Prefect's process pool) report to the server the flow reports to."""
from __future__ import annotations

import os


def share_local_server() -> None:
    """In Prefect's local mode the processes would each start a temporary server of their own: point them
    (through the environment they inherit) at this process's, so every run shows in one place."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        from prefect.server.api.server import SubprocessASGIServer

        os.environ["PREFECT_API_URL"] = SubprocessASGIServer().api_url
