"""The worker's periodic thread: runs at once, then every interval, survives a failing run, stops."""

from __future__ import annotations

import threading
import time

import pytest

from spinereview.core.periodic import periodic_thread_start


def test_runs_at_once_then_repeatedly_survives_failures_and_stops(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[float] = []

    def work() -> None:
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise ConnectionError("database is restarting")

    stop = threading.Event()
    thread = periodic_thread_start(name="test-sweeper", interval_s=0.05, work=work, stop=stop)
    deadline = time.monotonic() + 10
    while len(calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and thread.daemon and thread.name == "test-sweeper"
    assert len(calls) >= 4  # the failing second run did not end the loop
    assert "test-sweeper failed; next try in 0 s" in caplog.text and "database is restarting" in caplog.text
    stopped_at = len(calls)
    time.sleep(0.15)
    assert len(calls) == stopped_at
