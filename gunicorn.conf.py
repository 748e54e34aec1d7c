"""gunicorn settings for SpineReview; gunicorn reads this file by itself when started in the repository root.

    gunicorn spinereview.wsgi            # or with -c /path/to/gunicorn.conf.py from elsewhere

Threads (gthread) per worker process: DICOMweb viewers open about six connections and most of a
frame request is file and socket I/O, so a few processes with a few threads each keep both cores
busy without one process per connection. Environment overrides: GUNICORN_BIND, GUNICORN_WORKERS,
GUNICORN_THREADS, GUNICORN_SWITCH_INTERVAL_MS; command-line options override this file.
"""

import os
import sys

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# Viewers keep their connections open between bursts of frame requests.
keepalive = 30
# How often CPython's lock between a worker's threads (the GIL) changes hands; CPython's default is 5 ms.
# A thread whose database reply or socket write has completed waits for the lock while another thread
# computes, up to that long, and a save makes about a dozen database round trips. Measured on 2 cores
# (bench/load_readers.py, 50 readers, 3-5 runs each; bench/dicomweb_compare.py --runs 7, 2-3 each): 1 ms
# against 5 ms gave saves p50 16-20 vs 18-20 ms, p95 34-48 vs 41-47 ms (p99 within the runs' spread), and
# frames/s over 6 connections 0.89-0.94x vs 0.77-0.80x Orthanc's, the other DICOMweb figures unchanged.
switch_interval_ms = float(os.environ.get("GUNICORN_SWITCH_INTERVAL_MS", "1"))


def post_worker_init(worker: object) -> None:
    """Set the worker's thread switch interval, and load the URL configuration (and the modules it imports)
    before the worker takes requests, so the first request to each worker does not pay for it (seconds on a
    loaded machine)."""
    sys.setswitchinterval(switch_interval_ms / 1000)
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - evaluated for its side effect of importing every view
