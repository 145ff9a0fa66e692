"""A server whose database is away answers, but with 5xx: the calls to it are made again for a while, then end in
one line naming it (prac_lth/outages.py for Prefect's, prac_lth/tasks/tracking.py for MLflow's). Here the servers
are small HTTP servers answering as Prefect's and MLflow's do when PostgreSQL is down; tests/test_scale_out.py
stops the real PostgreSQL under the real servers."""
from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from prac.errors import UserError
from prac_lth import outages
from prac_lth.tasks import tracking

Answer = tuple[int, dict]


@contextlib.contextmanager
def answering(answer: Callable[[str], Answer]) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on loopback whose every GET and POST gets `answer(path)`; yields its URL and the paths asked."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            asked.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, body = answer(self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def _prefect_without_its_database(path: str) -> Answer:
    if path.startswith("/api/ready"):
        return 503, {"message": "Database is not available"}
    return 500, {"exception_message": "Internal Server Error"}  # what Prefect answers when PostgreSQL refuses


def test_a_prefect_server_whose_database_is_away_is_one_line_naming_both():
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    with answering(_prefect_without_its_database) as (url, asked), \
            temporary_settings({PREFECT_API_URL: f"{url}/api", PREFECT_CLIENT_MAX_RETRIES: 0}):
        with pytest.raises(Exception) as info, get_client(sync_client=True) as client:
            client.read_flow_run(uuid.uuid4())
        line = outages.prefect_outage(info.value)
    assert line is not None and "\n" not in line, line
    assert line.startswith(f"the Prefect server at {url}/api stopped answering (500 Internal Server Error for GET "
                           f"/api/flow_runs/"), line
    assert f"its database is away ({url}/api/ready: Database is not available)" in line, line
    assert line.endswith("run the same command again once it answers, finished stages are kept")
    assert outages.is_outage(info.value) and "/api/ready" in asked[-1]

    @outages.outages_as_user_errors
    def flow_body():
        try:
            raise info.value
        except Exception as exc:
            raise RuntimeError("raised while handling it") from exc  # found down the chain too

    with pytest.raises(outages.ServerUnavailable) as failed:
        flow_body()
    assert isinstance(failed.value, UserError) and str(failed.value).startswith("the Prefect server at ")


def test_other_failures_are_not_outages():
    for error in (ValueError("not a server's"), KeyError("x"), RuntimeError("x")):
        assert not outages.is_outage(error) and outages.prefect_outage(error) is None

    @outages.outages_as_user_errors
    def flow_body():
        raise ValueError("ours")

    with pytest.raises(ValueError, match="ours"):
        flow_body()


def test_the_client_defaults_keep_what_the_environment_says():
    env = outages.apply_client_defaults({})
    assert env == outages.CLIENT_DEFAULTS
    assert outages.apply_client_defaults({"PREFECT_CLIENT_RETRY_EXTRA_CODES": "504"}) == \
        {"PREFECT_CLIENT_RETRY_EXTRA_CODES": "504"}


def _mlflow_without_its_database_for(calls: int | None) -> Callable[[str], Answer]:
    """MLflow's server: /health answers; its store calls answer 503 TEMPORARILY_UNAVAILABLE (as it does when
    PostgreSQL is down) the first `calls` times (None: always), then as a store that is back."""
    failed = [0]

    def answer(path: str) -> Answer:
        if path.startswith("/health"):
            return 200, {}
        if calls is None or failed[0] < calls:
            failed[0] += 1
            return 503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "(psycopg2.OperationalError) refused"}
        return 200, {"experiment": {"experiment_id": "0", "name": "Default", "lifecycle_stage": "active"}}

    return answer


def test_an_mlflow_server_whose_database_comes_back_is_waited_for(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv(tracking.STORE_WAIT_ENV, "60")
    with answering(_mlflow_without_its_database_for(2)) as (url, asked):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        assert tracking.client().get_experiment("0").name == "Default"
    store_calls = [path for path in asked if "/experiments/get" in path]
    assert len(store_calls) == 3, asked  # twice refused, then answered


def test_an_mlflow_server_whose_database_stays_away_is_one_line(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv(tracking.STORE_WAIT_ENV, "2")
    with answering(_mlflow_without_its_database_for(None)) as (url, asked):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        with pytest.raises(tracking.TrackingUnavailable) as info:
            tracking.client().get_experiment("0")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"MLflow tracking server {url} answers, but its database has "
                                                      f"been away for 2 s ({tracking.STORE_WAIT_ENV}) ("), message
    assert len([path for path in asked if "/experiments/get" in path]) >= 2  # made again before giving up


def test_mlflows_own_calls_to_a_server_whose_database_is_away_are_one_line(monkeypatch):
    """mlflow.pytorch.log_model talks to the server without our client and is not made again (it would log a
    second model): past MLflow's own retries, one line."""
    import mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with answering(_mlflow_without_its_database_for(None)) as (url, asked):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        with pytest.raises(tracking.TrackingUnavailable) as info, tracking.server_calls():
            mlflow.MlflowClient(url).get_experiment("0")
    assert str(info.value).startswith(f"MLflow tracking server {url} answers, but its database is away (")
    assert len([path for path in asked if "/experiments/get" in path]) == 1
