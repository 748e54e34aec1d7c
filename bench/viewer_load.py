"""Reading page load time in headless Chromium on loopback: first rendered image and fully loaded series.

What it does (a report, not a test):
  1. A scratch SpineReview in --out (SQLite, media and collected static under SPINEREVIEW_VAR_DIR):
     two phantom cases (`python -m ml phantom`), `migrate`, `collectstatic` (the Vite build in
     frontend/dist, served by WhiteNoise), `demo_setup` (accounts, study, reader1's assignment of
     Phantom 001), then gunicorn with DEBUG=0 on 127.0.0.1:--port — the production setup of `./run demo`.
  2. Debian's Chromium (playwright, headless, SwiftShader WebGL) logs in as reader1 and opens the
     reading page of Phantom 001 --runs times with an empty browser cache (a new browser context
     each time: "cold") and --runs times in one context that has loaded the page before ("warm").
  3. Prints the median (and min/max) of, in ms since navigation start:
       first image  the first animation frame in which a visible canvas in #viewer-root has
                    non-black pixels (> 1 % of a 32 x 32 copy brighter than 10/255), polled every
                    frame from outside the app: the entry chunk's preview of the shown slice
                    (frontend/src/viewer/preview.ts, drawn before Cornerstone is loaded) or
                    Cornerstone's own canvas, whichever comes first
       cornerstone  the first CORNERSTONE_IMAGE_RENDERED event (caught in the capture phase, outside
                    the app) after which that viewport's canvas has non-black pixels (> 1 % of a
                    sampled grid brighter than 10/255), read from the canvas inside the event:
                    the image the reader can work on (scroll, window, measure)
       series       the app's `sr:series-loaded` performance mark: every slice of every hung series
                    is in Cornerstone's cache; checked against the network: a response for every
                    slice's frame (the boot's or Cornerstone's own request) ended before the mark
     and the app's own `sr:first-image` mark (its first-render hook) beside the independent figure.
  Goal (issue 5): first image <= 300 ms, series <= 1000 ms.

    npm --prefix frontend run build      # the bundle served is frontend/dist
    .venv/bin/python bench/viewer_load.py [--runs 7] [--out var/bench-viewer] [--trace trace.json]

--trace writes a Chromium performance trace (chrome://tracing / Perfetto) of one cold load, --cpu-profile
a JavaScript CPU profile of one (sampled every 0.25 ms; DevTools' Performance panel opens it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "bench-viewer-2026"
GOAL_FIRST_MS, GOAL_SERIES_MS = 300, 1000

# Runs before the page's own scripts: records the first render that put pixels on a canvas.
PROBE = """
(() => {
  const probe = { firstImageMs: null, onScreenMs: null, renders: 0, blankRenders: 0 };
  window.__srProbe = probe;
  const litFraction = (canvas) => {
    const ctx = canvas.getContext('2d', { willReadFrequently: false });
    if (!ctx || canvas.width === 0 || canvas.height === 0) return 0;
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let lit = 0, total = 0;
    const step = 4 * 7;  // every 7th pixel
    for (let i = 0; i < data.length; i += step) {
      total += 1;
      if (data[i] > 10 || data[i + 1] > 10 || data[i + 2] > 10) lit += 1;
    }
    return total ? lit / total : 0;
  };
  // Every frame until one shows it: is any visible canvas in the viewer lit? Read through a
  // 32 x 32 copy, so the check costs the page next to nothing. Counts the entry chunk's
  // preview (a plain canvas) as well as Cornerstone's canvases.
  const scratch = document.createElement('canvas');
  scratch.width = scratch.height = 32;
  const poll = () => {
    const now = performance.now();
    const sctx = scratch.getContext('2d', { willReadFrequently: true });
    for (const canvas of document.querySelectorAll('#viewer-root canvas')) {
      const box = canvas.getBoundingClientRect();
      if (canvas.width === 0 || canvas.height === 0 || box.width < 32 || box.height < 32) continue;
      if (canvas.checkVisibility && !canvas.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
      sctx.clearRect(0, 0, 32, 32);
      sctx.drawImage(canvas, 0, 0, 32, 32);
      const data = sctx.getImageData(0, 0, 32, 32).data;
      let lit = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] > 10 || data[i + 1] > 10 || data[i + 2] > 10) lit += 1;
      if (lit / 1024 > 0.01) {
        probe.onScreenMs = now;
        probe.onScreenCanvas = canvas.className || canvas.parentElement?.className || 'canvas';
        return;
      }
    }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
  document.addEventListener('CORNERSTONE_IMAGE_RENDERED', (evt) => {
    const now = performance.now();
    probe.renders += 1;
    if (probe.firstImageMs !== null) return;
    const canvas = evt.target instanceof Element ? evt.target.querySelector('canvas') : null;
    const fraction = canvas ? litFraction(canvas) : 0;
    if (fraction > 0.01) {
      probe.firstImageMs = now;
      probe.litFraction = fraction;
      probe.viewport = evt.target.id;
    } else {
      probe.blankRenders += 1;
    }
  }, true);
})();
"""

COLLECT = """
() => {
  const mark = (name) => performance.getEntriesByName(name, 'mark')[0]?.startTime ?? null;
  // The page's boot fetches every hung frame (fetch()) and hands the bytes to Cornerstone's loader;
  // Cornerstone requests (XHR) only those the boot had not received when it asked.
  const allFrames = performance.getEntriesByType('resource').filter((e) => e.name.includes('/frames/'));
  const seriesLoaded = mark('sr:series-loaded');
  const ended = allFrames.filter((e) => seriesLoaded !== null && e.responseEnd <= seriesLoaded + 1);
  const root = document.getElementById('viewer-root');
  return {
    probe: window.__srProbe,
    appFirstImage: mark('sr:first-image'),
    seriesLoaded,
    frames: new Set(ended.map((e) => e.name)).size,
    frameRequests: allFrames.length,
    cornerstoneFrameRequests: allFrames.filter((e) => e.initiatorType === 'xmlhttprequest').length,
    frameBytesFromNetwork: allFrames.reduce((s, e) => s + (e.transferSize || 0), 0),
    slices: [...document.querySelectorAll('[data-testid^=slice-]')].map((e) => e.textContent),
    requests: performance.getEntriesByType('resource').length,
    transferred: performance.getEntriesByType('resource').reduce((s, e) => s + (e.transferSize || 0), 0),
    state: root?.dataset.state,
  };
}
"""


WATERFALL = """
() => {
  const marks = performance.getEntriesByType('mark').map((m) => ({ name: 'mark ' + m.name, initiator: '', start: m.startTime, end: m.startTime, bytes: 0 }));
  const nav = performance.getEntriesByType('navigation')[0];
  const page = nav ? [{ name: 'page ' + nav.name, initiator: 'navigation', start: nav.requestStart, end: nav.responseEnd, bytes: nav.transferSize }] : [];
  // The document's own milestones: module scripts run after parsing, before DOMContentLoaded.
  const milestones = nav ? [['domInteractive', nav.domInteractive], ['DOMContentLoaded', nav.domContentLoadedEventStart]]
    .map(([name, at]) => ({ name: 'document ' + name, initiator: '', start: at, end: at, bytes: 0 })) : [];
  const resources = performance.getEntriesByType('resource').map((e) => ({
    name: e.name, initiator: e.initiatorType, start: e.startTime, end: e.responseEnd, bytes: e.transferSize,
  }));
  return [...page, ...milestones, ...resources, ...marks].sort((a, b) => a.start - b.start);
}
"""


def _print_waterfall(entries: list[dict[str, Any]], base: str) -> None:
    """One load's requests and the app's marks, ms since navigation start; frame URLs shortened to their SOP UID."""
    print("\nOne cold load: start    end  initiator       bytes  what")
    for e in entries:
        name = str(e["name"]).replace(base, "")
        if "/frames/" in name:
            name = "frame " + name.split("/instances/")[1].split("/")[0][-12:]
        elif len(name) > 90:
            name = name[:40] + "…" + name[-45:]
        print(f"           {e['start']:6.0f} {e['end']:6.0f}  {e['initiator']:14} {int(e['bytes'] or 0):7d}  {name}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([PY, "manage.py", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    return done.stdout


def _prepare(out: Path, env: dict[str, str]) -> str:
    """Scratch site: database, static files, demo data. Returns reader1's assignment of the unread case."""
    manifest = REPO / "frontend" / "dist" / ".vite" / "manifest.json"
    if not manifest.is_file():
        sys.exit(f"{manifest} is missing: build the viewer first (npm --prefix frontend run build)")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    subprocess.run(
        [PY, "-m", "ml", "phantom", "--out", str(out / "phantom"), "--seed", "1", "--cases", "2"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "collectstatic", "--noinput", "-v", "0")
    _manage(env, "demo_setup", str(out / "phantom"), "--password", PASSWORD)
    code = (
        "from spinereview.studies.models import Assignment;"
        "a = Assignment.objects.filter(reader__username='reader1', read_versions__isnull=True).order_by('order').first();"
        "print(a.pk)"
    )
    return _manage(env, "shell", "-c", code).strip().splitlines()[-1]


@contextlib.contextmanager
def _server(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    gunicorn = Path(PY).parent / "gunicorn"
    with log.open("w") as log_file:
        proc = subprocess.Popen(
            [str(gunicorn), "spinereview.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{base}/accounts/login/", timeout=2).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"gunicorn did not start; see {log}") from None
                    time.sleep(0.3)
            yield base
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def _load(page: Any, url: str) -> dict[str, Any]:
    page.goto(url)
    page.wait_for_selector('#viewer-root[data-series-loaded="true"], #viewer-root[data-state="error"]', timeout=60_000)
    page.wait_for_function(
        "() => window.__srProbe && window.__srProbe.firstImageMs !== null && window.__srProbe.onScreenMs !== null", timeout=10_000
    )
    result: dict[str, Any] = page.evaluate(COLLECT)
    slices = sum(int(text.split("/")[1]) for text in result["slices"] if "/" in text)
    if result["state"] == "error":
        raise RuntimeError(f"the viewer failed: {page.locator('#viewer-root').get_attribute('data-error')}")
    if result["frames"] < slices:
        raise RuntimeError(f"only {result['frames']} frames of {slices} slices had arrived by the series-loaded mark: it came too early")
    result["slicesTotal"] = slices
    return result


def _summary(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def stats(values: list[float]) -> str:
        return f"{statistics.median(values):7.0f}  ({min(values):.0f}-{max(values):.0f})"

    first = [r["probe"]["onScreenMs"] for r in runs]
    cornerstone = [r["probe"]["firstImageMs"] for r in runs]
    app_first = [r["appFirstImage"] for r in runs]
    series = [r["seriesLoaded"] for r in runs]
    shown_by = sorted({str(r["probe"].get("onScreenCanvas")) for r in runs})
    print(
        f"{name:5} first image {stats(first)} ({', '.join(shown_by)})   cornerstone {stats(cornerstone)}   app mark {stats(app_first)}   series {stats(series)}   "
        f"requests {runs[-1]['requests']}, {runs[-1]['transferred'] / 1e6:.2f} MB transferred, {runs[-1]['slicesTotal']} slices, "
        f"{runs[-1]['frameRequests']} frame requests ({runs[-1]['cornerstoneFrameRequests']} by Cornerstone; "
        f"{runs[-1]['frameBytesFromNetwork'] / 1e6:.2f} MB of frames over the network)"
    )
    return {
        "first_image_ms": statistics.median(first),
        "cornerstone_first_image_ms": statistics.median(cornerstone),
        "app_first_image_ms": statistics.median(app_first),
        "series_ms": statistics.median(series),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="loads per condition (median reported)")
    parser.add_argument("--out", type=Path, help="scratch folder (default: a temporary one, removed after)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--trace", type=Path, help="write a Chromium performance trace of one extra cold load here")
    parser.add_argument(
        "--cpu-profile", type=Path, help="write a JavaScript CPU profile (.cpuprofile, DevTools' Performance panel) of one extra cold load here"
    )
    parser.add_argument("--json", type=Path, help="write the medians here")
    parser.add_argument("--waterfall", action="store_true", help="print the requests of one extra cold load (start, end, initiator)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing (apt-get install chromium)")

    out = args.out or Path(tempfile.mkdtemp(prefix="sr-viewer-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        DEBUG="0",
        SECRET_KEY="bench-viewer-load-not-a-production-key",
        SPINEREVIEW_VAR_DIR=str(out / "var"),
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    started = time.monotonic()
    assignment = _prepare(out, env)
    print(f"scratch site ready in {time.monotonic() - started:.0f} s ({out}); assignment {assignment}")

    from playwright.sync_api import sync_playwright

    try:
        with _server(env, args.port or _free_port(), out / "gunicorn.log") as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            login = browser.new_context()
            page = login.new_page()
            page.goto(f"{base}/accounts/login/")
            page.fill("#id_username", "reader1")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            state = login.storage_state()
            login.close()
            url = f"{base}/reading/{assignment}/"
            viewport: Any = {"width": 1600, "height": 950}

            def probed_page() -> Any:
                """A page in a new browser context (an empty cache) with the probe; close its context when done."""
                ctx = browser.new_context(storage_state=state, viewport=viewport)
                ctx.add_init_script(PROBE)
                return ctx.new_page()

            # A first load warms the server's per-process caches; every measured load is comparable.
            page = probed_page()
            _load(page, url)
            page.context.close()

            cold: list[dict[str, Any]] = []
            for _ in range(args.runs):
                page = probed_page()
                cold.append(_load(page, url))
                page.context.close()
            warm: list[dict[str, Any]] = []
            page = probed_page()
            _load(page, url)
            for _ in range(args.runs):
                warm.append(_load(page, url))
            page.context.close()
            if args.waterfall:
                page = probed_page()
                _load(page, url)
                _print_waterfall(page.evaluate(WATERFALL), base)
                page.context.close()
            if args.cpu_profile:
                page = probed_page()
                cdp = page.context.new_cdp_session(page)
                cdp.send("Profiler.enable")
                cdp.send("Profiler.setSamplingInterval", {"interval": 250})
                cdp.send("Profiler.start")
                _load(page, url)
                args.cpu_profile.write_text(json.dumps(cdp.send("Profiler.stop")["profile"]))
                page.context.close()
            if args.trace:
                page = probed_page()
                browser.start_tracing(page=page, path=str(args.trace), screenshots=True)
                _load(page, url)
                browser.stop_tracing()
                page.context.close()
            browser.close()
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)

    print(
        f"\nReading page, ms since navigation start, median of {args.runs} (min-max); goal first image <= {GOAL_FIRST_MS}, series <= {GOAL_SERIES_MS}"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (the figures grow with it)")
    figures = {"cold": _summary("cold", cold), "warm": _summary("warm", warm)}
    for name, f in figures.items():
        ok_first = "met" if f["first_image_ms"] <= GOAL_FIRST_MS else "NOT met"
        ok_series = "met" if f["series_ms"] <= GOAL_SERIES_MS else "NOT met"
        print(f"{name}: first image goal {ok_first}, series goal {ok_series}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
