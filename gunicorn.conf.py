"""Gunicorn settings read from the working directory: start each worker's inbox as soon as it boots,
so events left over from a crash are taken up again without waiting for the next request; and put
the Prometheus metrics in multiprocess mode, so ``/metrics`` on any worker adds up all of them."""

import os
import shutil
import tempfile
from pathlib import Path

#: Set in the master's environment when this file made the metrics directory, so it is removed at exit.
OWN_METRICS_DIR = "BOTS_OWN_METRICS_DIR"


def _metrics_dir() -> None:
    """Give the workers a fresh ``PROMETHEUS_MULTIPROC_DIR`` unless the operator set one (to share it with the
    Celery workers on this machine). Runs when gunicorn reads this file, before any worker (or a preloaded app)
    imports ``prometheus_client``, which picks its mode at import; a reload finds it set and keeps it."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _sweep_metrics_dirs()
        made = tempfile.mkdtemp(prefix=f"bots-metrics-{os.getpid()}-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[OWN_METRICS_DIR] = made


def _sweep_metrics_dirs() -> None:
    """Remove the metrics directories of gunicorn masters that are gone (killed before ``on_exit`` ran): the
    master's pid is in each name."""
    for folder in Path(tempfile.gettempdir()).glob("bots-metrics-*-*"):
        pid = folder.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


_metrics_dir()

#: The access log redacted and escaped (no verify token, no forged lines); JSON lines with LOG_FORMAT=json.
logger_class = "bots.gunicorn_logging.Logger"


def _json_refusals() -> None:
    """Answer what gunicorn refuses before the app runs (a line too long, a bad chunk) in the app's JSON errors."""
    from gunicorn import util

    from bots.gunicorn_logging import write_error

    util.write_error = write_error


_json_refusals()


#: Worker classes that may fork the SQLite inbox's handler process as they boot (no event loop to carry over).
FORKING_WORKERS = ("SyncWorker", "ThreadWorker")


def post_worker_init(worker) -> None:
    """Start the worker's inbox as it boots: for the SQLite inbox, in a handler process forked now (the worker has
    one thread yet), whose death ends the worker, so gunicorn starts a new pair (``HANDLER_PROCESS=0``: threads
    in the worker)."""
    deployment = getattr(worker.wsgi, "extensions", {}).get("bots")
    if deployment is not None:
        deployment.start(fork=type(worker).__name__ in FORKING_WORKERS, on_lost=lambda: _stop(worker))


def _stop(worker) -> None:
    """End ``worker`` as its SIGTERM would (gunicorn starts another), waking its loop through gunicorn's own pipe."""
    worker.alive = False
    try:
        os.write(worker.PIPE[1], b".")
    except OSError:
        pass


def child_exit(server, worker) -> None:
    """Drop the live gauges of a worker that exited; its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the metrics directory this file made."""
    if os.environ.get(OWN_METRICS_DIR):
        shutil.rmtree(os.environ[OWN_METRICS_DIR], ignore_errors=True)
