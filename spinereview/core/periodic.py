"""Work a Celery worker repeats in a thread of its main process (no beat process needed)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


def periodic_thread_start(*, name: str, interval_s: float, work: Callable[[], object], stop: threading.Event) -> threading.Thread:
    """Run `work` now and then every `interval_s` seconds in a daemon thread until `stop` is set.

    A failure (the database or broker may be down) is logged and tried again at the next interval;
    the thread's database connections are closed after every run, so a restarted database is met
    with a fresh connection."""

    def loop() -> None:
        from django.db import close_old_connections

        while True:
            try:
                work()
            except Exception:
                logger.exception("%s failed; next try in %.0f s", name, interval_s)
            finally:
                close_old_connections()
            if stop.wait(interval_s):
                return

    stop.clear()
    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
