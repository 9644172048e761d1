"""The metrics as an operator reads them: gunicorn with two workers, scraped by a real Prometheus server.

Debian's ``prometheus`` (``scripts/prometheus.sh`` installs it; ``make test`` runs the script) is started
on loopback with a scrape config that sends ``METRICS_TOKEN``, and a second job without it; the series
are read back through Prometheus's HTTP API. The deliveries land on both workers, and the sums equal
what was sent, which only multiprocess mode can give.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector

from bots.deliveries import Deliveries
from tests.e2e.test_gunicorn import GUNICORN, free_port, post, start, stop, wait_for

PROMETHEUS = Path("/usr/bin/prometheus")
TOKEN = "e2e-metrics-token-0123"


def config(target: str) -> str:
    """Two jobs scraping the same ``/metrics`` every second: one with the bearer token, one without."""
    return json.dumps({
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [
            {"job_name": "bots", "authorization": {"type": "Bearer", "credentials": TOKEN},
             "static_configs": [{"targets": [target]}]},
            {"job_name": "no_token", "static_configs": [{"targets": [target]}]},
        ]})


def query(prometheus: str, promql: str) -> float | None:
    """The single value of an instant query, or None while there is none."""
    answer = requests.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def ready(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until Prometheus says it is ready: ``/-/ready`` answers 503 while it is still starting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait_for(url, process, timeout)
        if requests.get(url, timeout=2).status_code == 200:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


def settle(prometheus: str, promql: str, expected: float, timeout: float = 20) -> None:
    """Wait until ``promql`` answers ``expected``; fail with the last answer."""
    deadline, found = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        found = query(prometheus, promql)
        if found == expected:
            return
        time.sleep(0.25)
    raise AssertionError(f"{promql} = {found}, expected {expected}")


def deliveries_per_worker(tmp: Path) -> list[float]:
    """Each worker's own count of deliveries, read from its file in the directory gunicorn.conf.py made (a handler
    process's file counts the events it handled, and no delivery)."""
    counts = []
    for path in tmp.glob("bots-metrics-*/counter_*.db"):
        if path.stat().st_size < 4:  # a worker is creating it this moment: no count yet
            continue
        samples = [sample for metric in MultiProcessCollector.merge([str(path)]) for sample in metric.samples
                   if sample.name == "bots_deliveries_total"]
        if samples:
            counts.append(sum(sample.value for sample in samples))
    return counts


def send(url: str, count: int, offset: int) -> None:
    """``count`` distinct signed deliveries from four threads at once, a connection each, so both workers get some."""
    def one(n: int) -> None:
        assert post(url, Deliveries(sender=f"2000{n}").message("help")).status_code == 200

    threads = [threading.Thread(target=lambda part=part: [one(n) for n in range(offset + part, offset + count, 4)])
               for part in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture
def prometheus_binary() -> Path:
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.fail(f"{PROMETHEUS} is missing: run `bash scripts/prometheus.sh` (`make test` does)")
    return PROMETHEUS


def test_prometheus_reads_the_sums_of_both_workers(prometheus_binary, graph_server, tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    left_by_a_killed_master = tmp_path / f"bots-metrics-{gone.pid}-x"
    left_by_a_killed_master.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start([str(GUNICORN), "app:app", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "2",
                    "--worker-class", "gthread", "--graceful-timeout", "5"],
                   {"GRAPH_API_URL": graph_server.url, "METRICS_TOKEN": TOKEN, "DATA_DIR": str(tmp_path / "data"),
                    "TMPDIR": str(tmp_path), "LOG_LEVEL": "WARNING"})
    prometheus: subprocess.Popen | None = None
    try:
        wait_for(f"{url}/healthz", server)
        assert not left_by_a_killed_master.exists(), "a dead master's metrics directory is swept at start"
        sent, per_worker, deadline = 0, [], time.monotonic() + 15  # the second worker may still be booting
        while time.monotonic() < deadline and (len(per_worker) < 2 or min(per_worker) == 0):
            send(url, 8, sent)
            sent += 8
            per_worker = deliveries_per_worker(tmp_path)
            time.sleep(0.1)
        assert len(per_worker) == 2 and min(per_worker) > 0 and sum(per_worker) == sent, per_worker

        api_port = free_port()
        (tmp_path / "prometheus.yml").write_text(config(f"127.0.0.1:{port}"))
        prometheus = subprocess.Popen([str(prometheus_binary), f"--config.file={tmp_path / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                       f"--web.listen-address=127.0.0.1:{api_port}"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        api = f"http://127.0.0.1:{api_port}"
        ready(f"{api}/-/ready", prometheus)
        settle(api, 'up{job="bots"}', 1)
        settle(api, 'up{job="no_token"}', 0)
        settle(api, "sum(bots_deliveries_total)", sent)
        settle(api, 'sum(bots_deliveries_total{bot="helpdesk",status="200"})', sent)
        settle(api, 'sum(bots_events_total{bot="helpdesk",kind="page/messages",outcome="handled"})', sent)
        settle(api, 'sum(bots_outbox_sends_total{bot="helpdesk",outcome="sent"})', sent)
        settle(api, 'sum(bots_graph_calls_total{endpoint="/me/messages",status="200"})', sent)
        settle(api, 'sum(bots_handler_seconds_count{bot="helpdesk"})', sent)
        settle(api, "bots_inbox_pending", 0)
    finally:
        if prometheus is not None:
            stop(prometheus)
        stop(server)
    assert not list(tmp_path.glob("bots-metrics-*")), "gunicorn.conf.py leaves no metrics directory behind"
