"""SpineReview vs Orthanc on the shared DICOMweb benchmark (../shared/bench/dicomweb), in one run.

What it does (a report, not a test):
  1. SpineReview: migrates a scratch database, makes an administrator with an API token, starts
     gunicorn (the production server, settings from gunicorn.conf.py unless --workers/--threads)
     on 127.0.0.1:--port, STOWs the benchmark study (gen_lumbar_mr.py) with the token. Stored
     studies are de-identified, so the study is found by the UID in the STOW response (its
     PatientID is a pseudonym).
  2. Orthanc (if /usr/sbin/Orthanc and the DICOMweb plugin are installed, and --no-orthanc is not
     given): its own instance (never a system service) with the shared anchor configuration on
     127.0.0.1:--orthanc-port and a store under --out, and the same STOW.
  3. Both servers stay up while dicomweb_bench.py runs --runs times against each, interleaved
     (A B, B A, ...) so that both see the same drift in a shared machine's load; then prints the
     median of the runs for every headline figure and the ratio (>= 1.0: SpineReview at least as
     fast as Orthanc).

    python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install httpx pydicom numpy   # the shared client's needs
    apt-get install orthanc orthanc-dicomweb                                                 # the reference
    /tmp/benchvenv/bin/python bench/dicomweb_compare.py --out var/bench-dicomweb --fresh --runs 7

The benchmark client runs in the interpreter that runs this script (httpx is not a SpineReview
dependency); the server side (manage.py, gunicorn) runs in --server-python (default .venv).

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/spinereview_bench, created
if missing), CELERY_BROKER_URL (default redis://127.0.0.1:6379/15), SECRET_KEY (default: a random
one per run). The media folder and Orthanc's store go under --out.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_BENCH = REPO.parent / "shared" / "bench" / "dicomweb"
# Figures compared, and whether higher is better (throughput) or lower (latency).
HEADLINES = [
    ("qido_studies.median_ms", False),
    ("qido_series.median_ms", False),
    ("wado_series_metadata.median_ms", False),
    ("frames_seq.frames_per_s_median", True),
    ("frames_conc6.frames_per_s_median", True),
    ("wado_series_retrieve.median_ms", False),
    ("stow_single_instance.median_ms", False),
    ("stow_batch_per_instance.median_ms", False),
]


def _load_shared() -> tuple[Any, Any]:
    sys.path.insert(0, str(SHARED_BENCH))
    return importlib.import_module("dicomweb_bench"), importlib.import_module("gen_lumbar_mr")


def _wait(url: str, headers: dict[str, str], timeout_s: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout_s:.0f} s")


def _stow_study(gen: Any, root: str, headers: dict[str, str]) -> str:
    """STOW the benchmark study (one request); the StudyInstanceUID the server stored it under."""
    import httpx

    datasets = gen.build_study("anchor-lspine-v1", "ANCHOR-LSPINE-001")
    blobs = [gen.dataset_bytes(d) for d in datasets]
    with httpx.Client(timeout=300, headers=headers) as client:
        seconds, response = gen.stow_post(client, root, blobs, str(datasets[0].StudyInstanceUID))
    if response.status_code not in (200, 202):
        raise SystemExit(f"STOW to {root} failed: HTTP {response.status_code} {response.text[:500]}")
    print(f"# STOW of {len(blobs)} instances to {root}: {seconds * 1000:.0f} ms")
    retrieve = response.json().get("00081190", {}).get("Value", [""])[0] if response.content else ""
    return retrieve.rstrip("/").rsplit("/", 1)[-1] if retrieve else str(datasets[0].StudyInstanceUID)


def _run_bench(bench: Any, root: str, label: str, study: str, patient_id: str, headers: dict[str, str], argv: list[str]) -> dict[str, Any]:
    import httpx

    class AuthBench(bench.Bench):  # type: ignore[misc,name-defined]
        def _client(self, conns: int = 1) -> httpx.Client:
            return httpx.Client(
                timeout=self.a.timeout,
                headers={**self.common, **headers},
                limits=httpx.Limits(max_connections=conns, max_keepalive_connections=conns),
            )

    parser_args = ["--base-url", root, "--label", label, "--study", study, "--patient-id", patient_id, *argv]
    namespace = _bench_args(bench, parser_args)
    runner = AuthBench(namespace)
    try:
        out: dict[str, Any] = runner.run()
    finally:
        runner.client.close()
    print(f"# {label} @ {root}")
    print(bench.table(out["results"]))
    return out


def _bench_args(bench: Any, argv: list[str]) -> argparse.Namespace:
    """The shared benchmark's own argument defaults, parsed from argv."""
    captured: dict[str, argparse.Namespace] = {}
    original = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> argparse.Namespace:
        captured["a"] = original(self, args, namespace)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign,assignment]
    try:
        bench.main(argv)
    except SystemExit:
        pass
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    return captured["a"]


@contextlib.contextmanager
def _spinereview(args: argparse.Namespace, gen: Any) -> Iterator[dict[str, Any]]:
    """gunicorn serving SpineReview with the benchmark study stored; yields the target (root, study, headers)."""
    out_dir = Path(args.out).resolve()
    env = dict(
        os.environ,
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),  # a throwaway key (placeholders are refused)
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/spinereview_bench"),
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
        SPINEREVIEW_MEDIA_ROOT=str(out_dir / "media"),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
    )
    python = args.server_python
    if env["DATABASE_URL"].startswith("postgres"):
        _create_database(python, env["DATABASE_URL"], fresh=args.fresh)
    if args.fresh:
        shutil.rmtree(out_dir / "media", ignore_errors=True)
    subprocess.run([python, "manage.py", "migrate", "--verbosity", "0"], cwd=REPO, env=env, check=True)
    key = (
        subprocess.run(
            [
                python,
                "manage.py",
                "shell",
                "-c",
                "from rest_framework.authtoken.models import Token; from spinereview.accounts.models import User;"
                "u, _ = User.objects.get_or_create(username='bench', defaults={'is_staff': True, 'is_superuser': True});"
                "print(Token.objects.get_or_create(user=u)[0].key)",
            ],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    headers = {"Authorization": f"Token {key}"}
    log = open(out_dir / "gunicorn.log", "wb")  # noqa: SIM115 - open for the server's lifetime
    command = [python, "-m", "gunicorn", "spinereview.wsgi", "--bind", f"127.0.0.1:{args.port}"]
    if args.workers:
        command += ["--workers", str(args.workers)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{args.port}/dicomweb"
    try:
        _wait(f"{root}/studies?limit=1", headers)
        study = _stow_study(gen, root, headers)
        import httpx

        found = httpx.get(f"{root}/studies", params={"StudyInstanceUID": study}, headers=headers, timeout=30).json()
        yield {"label": "spinereview", "root": root, "study": study, "patient_id": found[0]["00100020"]["Value"][0], "headers": headers}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _create_database(python: str, url: str, *, fresh: bool) -> None:
    """Create the scratch PostgreSQL database (dropped first with --fresh), with the server's psycopg."""
    name = url.rsplit("/", 1)[-1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    script = (
        "import sys, psycopg\n"
        "name, url, fresh = sys.argv[1], sys.argv[2], sys.argv[3] == '1'\n"
        "with psycopg.connect(url, autocommit=True) as c:\n"
        "    exists = c.execute('SELECT 1 FROM pg_database WHERE datname = %s', (name,)).fetchone()\n"
        "    if exists and fresh:\n"
        "        c.execute(f'DROP DATABASE \"{name}\"'); exists = None\n"
        "    if not exists:\n"
        "        c.execute(f'CREATE DATABASE \"{name}\"')\n"
    )
    subprocess.run([python, "-c", script, name, admin_url, "1" if fresh else "0"], check=True)


def _orthanc_start(anchor: Path, port: int) -> subprocess.Popen[bytes]:
    """Our own Orthanc (never a system service): the shared anchor config with its own port and store.

    Orthanc 1.10 cannot choose its listening address, so the shared shim (bind_loopback.c) binds it to
    127.0.0.1, as start_orthanc.sh does; the port is private so that runs beside others never collide.
    """
    shim = anchor / "bind_loopback.so"
    if not shim.exists():
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(SHARED_BENCH / "bind_loopback.c"), "-ldl"], check=True)
    config = json.loads((SHARED_BENCH / "orthanc-anchor.json").read_text().replace("$ANCHOR_DIR", str(anchor)))
    config["HttpPort"] = port
    (anchor / "orthanc.json").write_text(json.dumps(config, indent=2))
    log = open(anchor / "orthanc.log", "wb")  # noqa: SIM115 - open for the server's lifetime
    server = subprocess.Popen(
        ["/usr/sbin/Orthanc", str(anchor / "orthanc.json")],
        cwd=anchor,
        env=dict(os.environ, LD_PRELOAD=str(shim)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return server


@contextlib.contextmanager
def _orthanc(args: argparse.Namespace, gen: Any) -> Iterator[dict[str, Any] | None]:
    """Our Orthanc with the benchmark study stored; yields the target, or None when Orthanc is not installed."""
    if not Path("/usr/sbin/Orthanc").exists() or not Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so").exists():
        print("# Orthanc with the DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb); skipped")
        yield None
        return
    anchor = Path(args.out).resolve() / "orthanc"
    if args.fresh:
        shutil.rmtree(anchor, ignore_errors=True)
    anchor.mkdir(parents=True, exist_ok=True)
    server = _orthanc_start(anchor, args.orthanc_port)
    try:
        root = f"http://127.0.0.1:{args.orthanc_port}/dicom-web"
        _wait(f"http://127.0.0.1:{args.orthanc_port}/system", {})
        study = _stow_study(gen, root, {})
        yield {"label": "orthanc", "root": root, "study": study, "patient_id": "ANCHOR-LSPINE-001", "headers": {}}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def ratio_table(ours: dict[str, Any], theirs: dict[str, Any], bench: Any) -> str:
    """Median of runs per headline, and SpineReview's speed relative to Orthanc (>= 1.0: as fast or faster)."""
    flat_ours = [bench.flatten(r["results"]) for r in ours["runs"]]
    flat_theirs = [bench.flatten(r["results"]) for r in theirs["runs"]]
    lines = [f"{'figure':40s} {'SpineReview':>12s} {'Orthanc':>12s} {'ratio':>7s}", "-" * 75]
    for key, higher_is_better in HEADLINES:
        a = [f[key] for f in flat_ours if key in f]
        b = [f[key] for f in flat_theirs if key in f]
        if not a or not b:
            continue
        ours_value, theirs_value = _median(a), _median(b)
        ratio = ours_value / theirs_value if higher_is_better else theirs_value / ours_value
        lines.append(f"{key:40s} {ours_value:12.2f} {theirs_value:12.2f} {ratio:7.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "var" / "bench-dicomweb"))
    parser.add_argument("--server-python", default=str(REPO / ".venv" / "bin" / "python"))
    parser.add_argument("--port", type=int, default=8071)
    parser.add_argument("--orthanc-port", type=int, default=8742, help="port of the Orthanc this script starts (its own, on 127.0.0.1)")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn worker processes (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, default=0, help="threads per gunicorn worker (default: gunicorn.conf.py's)")
    parser.add_argument("--bench-args", default="", help="extra arguments for dicomweb_bench.py, e.g. '--frame-reps 4'")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--fresh", action="store_true", help="start from an empty database, media folder and Orthanc store")
    parser.add_argument("--no-orthanc", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (-n 10, 3 frame passes, 3 series retrieves)")
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    bench, gen = _load_shared()
    bench_argv = ["-n", "10", "--frame-reps", "3", "--series-reps", "3"] if args.quick else []
    if args.bench_args:
        bench_argv += args.bench_args.split()
    results: dict[str, dict[str, Any] | None] = {"spinereview": {"runs": []}, "orthanc": None}
    load_start = os.getloadavg()
    with contextlib.ExitStack() as stack:
        targets = [stack.enter_context(_spinereview(args, gen))]
        if not args.no_orthanc:
            orthanc = stack.enter_context(_orthanc(args, gen))
            if orthanc is not None:
                targets.append(orthanc)
                results["orthanc"] = {"runs": []}
        # Interleaved (A B, B A, A B, ...): both servers see the same drift in the shared machine's load.
        for run in range(args.runs):
            for target in targets if run % 2 == 0 else targets[::-1]:
                out = _run_bench(
                    bench, target["root"], target["label"], target["study"], target["patient_id"], target["headers"], bench_argv
                )
                results[target["label"]]["runs"].append(out)  # type: ignore[index]
    (Path(args.out) / "compare.json").write_text(json.dumps(results))
    if results["orthanc"]:
        print(f"# medians of {args.runs} interleaved run(s) per server")
        print(ratio_table(results["spinereview"], results["orthanc"], bench))  # type: ignore[arg-type]
    # The machine may be shared: figures are comparable only with the load they were measured under.
    print("# load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}; at the end: {:.2f} {:.2f} {:.2f}".format(*load_start, *os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
