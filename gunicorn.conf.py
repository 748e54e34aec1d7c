"""gunicorn settings for SpineReview; gunicorn reads this file by itself when started in the repository root.

    gunicorn spinereview.wsgi            # or with -c /path/to/gunicorn.conf.py from elsewhere

Threads (gthread) per worker process: DICOMweb viewers open about six connections and most of a
frame request is file and socket I/O, so a few processes with a few threads each keep both cores
busy without one process per connection. Environment overrides: GUNICORN_BIND, GUNICORN_WORKERS,
GUNICORN_THREADS; command-line options override this file.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# Viewers keep their connections open between bursts of frame requests.
keepalive = 30


def post_worker_init(worker: object) -> None:
    """Load the URL configuration (and the modules it imports) before the worker takes requests, so the first
    request to each worker does not pay for it (seconds on a loaded machine)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - evaluated for its side effect of importing every view
