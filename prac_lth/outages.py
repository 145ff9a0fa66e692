"""The Prefect server's database away (a restart, a failover, a managed service's maintenance window): ridden out
for about a minute, then one line.

Prefect's server answers a request that finds its database gone with 503 when the connection dropped under the
query, and with 500 when a new connection is refused (asyncpg's ConnectionRefusedError is not among the errors its
handler calls retryable). Prefect's client retries 503 (and 408, 429, 502, connection errors)
PREFECT_CLIENT_MAX_RETRIES times (5) with a backoff of 2, 4, ... 32 s (about 62 s in all), but not 500.
CLIENT_DEFAULTS adds 500, so that every call of every process rides the outage out: ours (the comparison's waits
for its flow runs, the pool's checks, the GPU slot), Prefect's engine's (states, task runs, logs, artifacts) and
the workers' polls. They are set wherever those processes start: the CLI (apply_client_defaults, before Prefect
is imported), the stack's servers and workers (prac_lth/deployments/stack.py), every flow run on any worker
(prefect.yaml's job variables) and the docker image. Set in the environment, they are left as they are. The price:
a 500 that is a bug, not an outage, is reported after those same 62 s.

When the retries are spent, prefect_outage() is the one line that says so, naming the server (and its database
when the server's /api/ready says that is what is away); the CLI ends with it (exit 2) and a flow run fails with
it (outages_as_user_errors)."""
from __future__ import annotations

import functools
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import MutableMapping
from typing import Any, Callable, TypeVar

from prac.errors import UserError, one_line

CLIENT_DEFAULTS = {"PREFECT_CLIENT_RETRY_EXTRA_CODES": "500"}
READY_TIMEOUT_S = 5.0

F = TypeVar("F", bound=Callable[..., Any])


class ServerUnavailable(UserError):
    """The Prefect server stopped answering (or its database did) for longer than the client's retries."""


def apply_client_defaults(env: MutableMapping[str, str] = os.environ) -> MutableMapping[str, str]:
    for name, value in CLIENT_DEFAULTS.items():
        env.setdefault(name, value)
    return env


def _outage_error(exc: BaseException | None) -> Any:
    """The httpx error in `exc`'s chain that says a server did not answer (a 5xx, or no connection), or None."""
    httpx = sys.modules.get("httpx")  # not imported: no Prefect client ran, so none of its errors
    seen: set[int] = set()
    while httpx is not None and exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500:
            return exc
        if isinstance(exc, httpx.TransportError):
            try:
                exc.request  # noqa: B018 - raises when the error came without one
            except RuntimeError:
                pass
            else:
                return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _database_problem(api: str) -> str:
    """'; its database is away (…)' when the server's readiness check says so, else ''."""
    try:
        with urllib.request.urlopen(f"{api}/ready", timeout=READY_TIMEOUT_S):
            return ""
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read() or b"{}").get("message", "")
        except (ValueError, AttributeError, OSError):
            message = ""
        return f"; its database is away ({api}/ready: {message or error.code})" if error.code == 503 else ""
    except (OSError, ValueError):
        return ""


def is_outage(exc: BaseException | None) -> bool:
    """Whether `exc` (or what it was raised from) is a server that did not answer; quick: asks no server."""
    return _outage_error(exc) is not None


def prefect_outage(exc: BaseException) -> str | None:
    """One line when `exc` (or what it was raised from) is a Prefect server that stopped answering; else None."""
    error = _outage_error(exc)
    if error is None:
        return None
    url = error.request.url
    api = f"{url.scheme}://{url.netloc.decode()}{url.path.split('/api/')[0]}/api"
    if hasattr(error, "response"):
        what = f"{error.response.status_code} {error.response.reason_phrase} for {error.request.method} {url.path}"
    else:
        what = f"{type(error).__name__} for {error.request.method} {url.path}: {one_line(error, 120)}"
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES  # imported already: its client raised `error`

    return (f"the Prefect server at {api} stopped answering ({what}) through Prefect's "
            f"{PREFECT_CLIENT_MAX_RETRIES.value()} retries"
            f"{_database_problem(api)}: run the same command again once it answers, finished stages are kept")


def outages_as_user_errors(function: F) -> F:
    """A flow whose Prefect server stopped answering fails with prefect_outage()'s one line, not a traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except UserError:
            raise
        except Exception as exc:
            if line := prefect_outage(exc):
                raise ServerUnavailable(line) from None
            raise

    return wrapper  # type: ignore[return-value]
