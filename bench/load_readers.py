"""50 concurrent readers saving grades, measurements and masks against gunicorn + PostgreSQL (loopback).

What it does:
  1. migrates the database named by DATABASE_URL (default postgres://postgres@127.0.0.1:5432/sr_load) and
     creates a reader study of --cases synthetic MR cases (--mask-shape slices of rows x columns) with
     --readers readers, every reader assigned every case, each with an API token;
  2. starts gunicorn on 127.0.0.1 with production settings (DEBUG=0, PostgreSQL);
  3. runs --readers client threads for --duration seconds, one keep-alive HTTP session each. Every reader
     works on its own case and, after a think time of --think-ms (uniformly 0.5x to 1.5x), saves one of:
       grades       PUT /api/v1/assignments/<id>/read/  (all levels graded, measurements kept)
       measurement  the same PUT with one more length measurement drawn
       mask         PUT /api/v1/assignments/<id>/segmentations/<series>/labels, If-Match: <version>
     and, with probability --stale, first replays a save based on the previous version, which must be
     refused with 412 (and change nothing);
  4. prints p50/p95/p99/max latency per save kind, throughput and errors, then checks zero lost updates:
     every acknowledged save is stored as exactly that version with exactly the content sent, no version
     exists that was not acknowledged, and no stale save was stored.

Run (the shared PostgreSQL; your own database name):
  .venv/bin/python bench/load_readers.py [--readers 50] [--duration 30] [--think-ms 1000] [--workers N --threads N]
  --think-ms 0 saturates the server (every reader saves back to back): a capacity figure, not a latency one.
Exit status 1 if any save failed, any update was lost, a stale save was stored, or the audit chain broke.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import runpy
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KINDS = ("grades", "measurement", "mask")


@dataclass
class Target:
    assignment_id: str
    series_uid: str
    token: str
    levels: list[str]
    categories: list[str]
    shape: tuple[int, int, int]
    label_values: tuple[int, int]


@dataclass
class ReaderLog:
    """What one reader sent and what the server acknowledged."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in (*KINDS, "stale")})
    errors: list[str] = field(default_factory=list)
    read_acks: dict[int, tuple[float, str]] = field(default_factory=dict)  # version -> (elapsed_s marker, grades digest)
    mask_acks: dict[int, str] = field(default_factory=dict)  # version -> sha256 of the labels sent
    stale_refused: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _grades_digest(grades: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(sorted((g["level"], g["condition"], g["value"]) for g in grades)).encode()).hexdigest()


def setup_study(*, readers: int, cases: int, shape: tuple[int, int, int]) -> tuple[str, list[Target]]:
    """The reader study, readers, cases, assignments and tokens, made with the project's own services."""
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from spinereview.accounts.models import User
    from spinereview.imaging.services import ImportSource
    from spinereview.studies.models import Assignment, StudyMembership
    from spinereview.studies.protocols import DEFAULT_PROTOCOL, condition_categories
    from spinereview.studies.services import assignments_create, cases_import, membership_add, reader_study_create
    from tests.dicom_files import mr_slice

    call_command("migrate", verbosity=0, interactive=False)
    run = uuid.uuid4().hex[:8]
    study = reader_study_create(name=f"Load bench {run}", slug=f"load-{run}", protocol=DEFAULT_PROTOCOL)
    slices, rows, columns = shape
    for c in range(cases):
        study_uid, series_uid = f"1.2.826.0.1.3680043.10.1.{int(run, 16)}.{c}", f"1.2.826.0.1.3680043.10.1.{int(run, 16)}.{c}.1"
        sources = [
            ImportSource(f"c{c}s{z}.dcm", mr_slice(z_mm=4.0 * z, study_uid=study_uid, series_uid=series_uid, rows=rows, columns=columns))
            for z in range(slices)
        ]
        cases_import(sources=sources, reader_study=study, label_prefix="Load")
    users = []
    for r in range(readers):
        user, _ = User.objects.get_or_create(username=f"load-{run}-reader{r:02d}")
        membership_add(reader_study=study, user=user, role=StudyMembership.Role.READER)
        users.append(user)
    assignments_create(reader_study=study, actor="bench")
    protocol = study.protocol
    categories = condition_categories(protocol, "central_canal")
    ordered_cases = list(study.cases.order_by("label"))
    targets = []
    for r, user in enumerate(users):
        case = ordered_cases[r % len(ordered_cases)]
        assignment = Assignment.objects.get(case=case, reader=user)
        series_uid = case.case_series.values_list("series__series_instance_uid", flat=True).get()
        token, _ = Token.objects.get_or_create(user=user)
        values = [label["value"] for label in protocol["segmentation"]["labels"]]
        targets.append(
            Target(str(assignment.pk), series_uid, token.key, list(protocol["levels"]), categories, shape, (values[0], values[-1]))
        )
    from django.db import connections

    connections.close_all()
    return study.slug, targets


def reader_loop(target: Target, base_url: str, stop_at: float, think_s: float, stale_p: float, seed: int, log: ReaderLog) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {target.token}"
    read_url = f"{base_url}/api/v1/assignments/{target.assignment_id}/read/"
    mask_url = f"{base_url}/api/v1/assignments/{target.assignment_id}/segmentations/{target.series_uid}/labels"
    read_version = 0
    mask_version = 0
    measurements: list[dict[str, Any]] = []
    saves = 0
    slices, rows, columns = target.shape

    def timed(kind: str, method: str, url: str, **kwargs: Any) -> requests.Response | None:
        start = time.perf_counter()
        try:
            response = session.request(method, url, timeout=30, **kwargs)
        except requests.RequestException as exc:
            log.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return None
        log.latencies[kind].append(time.perf_counter() - start)
        return response

    while time.monotonic() < stop_at:
        time.sleep(think_s * rng.uniform(0.5, 1.5) if think_s > 0 else 0)
        if time.monotonic() >= stop_at:
            break
        saves += 1
        kind = rng.choices(KINDS, weights=(45, 25, 30))[0]
        if kind == "mask":
            labels = bytearray(slices * rows * columns)
            z, y0, x0 = rng.randrange(slices), rng.randrange(rows // 2), rng.randrange(columns // 2)
            first, second = (bytes([v]) * (columns // 4) for v in target.label_values)
            for y in range(y0, y0 + rows // 4):  # a rectangle of one label on one slice, the other label on the next
                start = (z * rows + y) * columns + x0
                labels[start : start + columns // 4] = first
                if z + 1 < slices:
                    start2 = ((z + 1) * rows + y) * columns + x0
                    labels[start2 : start2 + columns // 4] = second
            body = bytes(labels)
            headers = {"Content-Type": "application/octet-stream"}
            if mask_version > 0 and rng.random() < stale_p:
                stale = timed("stale", "PUT", mask_url, data=body, headers=headers | {"If-Match": f'"{mask_version - 1}"'})
                if stale is not None and stale.status_code == 412 and stale.json().get("current_version") == mask_version:
                    log.stale_refused += 1
                elif stale is not None:
                    log.errors.append(f"stale mask save answered {stale.status_code}: {stale.text[:200]}")
            response = timed("mask", "PUT", mask_url, data=body, headers=headers | {"If-Match": f'"{mask_version}"'})
            if response is None:
                continue
            if response.status_code != 200:
                log.errors.append(f"mask {response.status_code}: {response.text[:200]}")
                continue
            mask_version = int(response.json()["version"])
            log.mask_acks[mask_version] = hashlib.sha256(body).hexdigest()
            continue
        grades = [{"level": level, "condition": "central_canal", "value": rng.choice(target.categories)} for level in target.levels]
        if kind == "measurement":
            if len(measurements) >= 20:
                measurements.pop(0)
            px, py = rng.uniform(0, columns * 0.5), rng.uniform(0, rows * 0.5)
            measurements.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "key": "ap_diameter",
                    "level": rng.choice(target.levels),
                    "series_instance_uid": target.series_uid,
                    "points_mm": [[px, py, 0.0], [px + rng.uniform(1, 15), py + rng.uniform(1, 15), 0.0]],
                }
            )
        # A marker unique to this save (reader seed, save number) rides in the reading time.
        marker = float(seed * 10000 + saves)
        payload = {"grades": grades, "measurements": measurements, "elapsed_s": marker}
        if read_version > 0 and rng.random() < stale_p:
            stale = timed("stale", "PUT", read_url, json=payload | {"base_version": read_version - 1, "elapsed_s": marker + 0.5})
            if stale is not None and stale.status_code == 412 and stale.json().get("current", {}).get("version") == read_version:
                log.stale_refused += 1
            elif stale is not None:
                log.errors.append(f"stale read save answered {stale.status_code}: {stale.text[:200]}")
        response = timed(kind, "PUT", read_url, json=payload | {"base_version": read_version})
        if response is None:
            continue
        if response.status_code != 200:
            log.errors.append(f"{kind} {response.status_code}: {response.text[:200]}")
            continue
        read_version = int(response.json()["version"])
        log.read_acks[read_version] = (marker, _grades_digest(grades))
    session.close()


def verify(targets: list[Target], logs: list[ReaderLog]) -> list[str]:
    """Every acknowledged save is stored as that version with that content; nothing else is stored."""
    from spinereview.studies.models import ReadVersion, SegmentationVersion

    problems = []
    for target, log in zip(targets, logs, strict=True):
        stored = {v.version: v for v in ReadVersion.objects.filter(assignment_id=target.assignment_id).prefetch_related("grades")}
        for version, (marker, digest) in log.read_acks.items():
            row = stored.get(version)
            if row is None:
                problems.append(f"{target.assignment_id}: acknowledged read version {version} is missing")
                continue
            got = _grades_digest([{"level": g.level, "condition": g.condition, "value": g.value} for g in row.grades.all()])
            if row.elapsed_s != marker or got != digest:
                problems.append(f"{target.assignment_id}: read version {version} does not hold what was acknowledged")
        extra = sorted(set(stored) - set(log.read_acks))
        if extra:
            problems.append(f"{target.assignment_id}: read versions {extra} were stored but never acknowledged (a stale save landed?)")
        masks = dict(SegmentationVersion.objects.filter(assignment_id=target.assignment_id).values_list("version", "sha256"))
        for version, sha in log.mask_acks.items():
            if masks.get(version) != sha:
                problems.append(
                    f"{target.assignment_id}: acknowledged mask version {version} is {'missing' if version not in masks else 'different'}"
                )
        extra_masks = sorted(set(masks) - set(log.mask_acks))
        if extra_masks:
            problems.append(f"{target.assignment_id}: mask versions {extra_masks} were stored but never acknowledged")
    return problems


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of saving")
    parser.add_argument("--think-ms", type=float, default=1000.0, help="mean pause between a reader's saves")
    parser.add_argument("--stale", type=float, default=0.05, help="probability of a deliberately stale save before a save")
    parser.add_argument("--mask-shape", default="16x192x192", help="slices x rows x columns of each case's series")
    production = runpy.run_path(str(REPO / "gunicorn.conf.py"))  # the server ./run demo and the web image start
    parser.add_argument("--workers", type=int, default=production["workers"], help="gunicorn worker processes (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, default=production["threads"], help="threads per gunicorn worker (default: gunicorn.conf.py's)")
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.mask_shape.split("x"))
    if len(shape) != 3:
        parser.error("--mask-shape is slices x rows x columns, e.g. 16x192x192")

    media = tempfile.mkdtemp(prefix="load-readers-media-")
    env = dict(
        os.environ,
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sr_load"),
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/3"),
        SPINEREVIEW_MEDIA_ROOT=media,
        DJANGO_SETTINGS_MODULE="spinereview.settings",
        LOG_LEVEL="WARNING",
    )
    os.environ.update(env)
    _ensure_database(env["DATABASE_URL"])
    t0 = time.perf_counter()
    slug, targets = setup_study(readers=args.readers, cases=args.cases, shape=shape)  # type: ignore[arg-type]
    print(f"setup: study {slug}, {args.readers} readers, {args.cases} cases of {args.mask_shape} in {time.perf_counter() - t0:.1f} s")

    port = _free_port()
    server_log = open(Path(media) / "gunicorn.log", "wb")  # noqa: SIM115 - open for the server's lifetime
    print(f"gunicorn log: {server_log.name}")
    base_url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "spinereview.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--worker-class",
            "gthread",
        ],
        cwd=REPO,
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_up(base_url, server)
        # One warm-up request per reader: connections made, workers' imports done.
        for target in targets:
            requests.get(
                f"{base_url}/api/v1/assignments/{target.assignment_id}/", headers={"Authorization": f"Token {target.token}"}, timeout=30
            ).raise_for_status()
        logs = [ReaderLog() for _ in targets]
        cpu_before = _server_cpu(server.pid, env["DATABASE_URL"])
        client_cpu_before = time.process_time()
        stop_at = time.monotonic() + args.duration
        started = time.perf_counter()
        threads = [
            threading.Thread(target=reader_loop, args=(t, base_url, stop_at, args.think_ms / 1000, args.stale, i + 1, log), daemon=True)
            for i, (t, log) in enumerate(zip(targets, logs, strict=True))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.duration + 120)
        wall = time.perf_counter() - started
        cpu = _cpu_used(cpu_before, _server_cpu(server.pid, env["DATABASE_URL"]))
        client_cpu = time.process_time() - client_cpu_before
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()

    print(
        f"\n{args.readers} readers, {wall:.1f} s, think time {args.think_ms:.0f} ms, gunicorn {args.workers} workers x {args.threads} threads, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'kind':<12}{'saves':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    all_saves: list[float] = []
    for kind in (*KINDS, "stale"):
        values = [v for log in logs for v in log.latencies[kind]]
        if kind != "stale":
            all_saves += values
        if values:
            print(
                f"{kind:<12}{len(values):>7}{_pct(values, 50) * 1e3:>9.1f}{_pct(values, 95) * 1e3:>9.1f}{_pct(values, 99) * 1e3:>9.1f}{max(values) * 1e3:>9.1f}"
            )
    if all_saves:
        print(
            f"{'all saves':<12}{len(all_saves):>7}{_pct(all_saves, 50) * 1e3:>9.1f}{_pct(all_saves, 95) * 1e3:>9.1f}{_pct(all_saves, 99) * 1e3:>9.1f}{max(all_saves) * 1e3:>9.1f}"
        )
    print(
        f"throughput: {len(all_saves) / wall:.1f} saves/s ({sum(len(v) for log in logs for v in log.latencies.values()) / wall:.1f} requests/s)"
    )
    requests_sent = sum(len(v) for log in logs for v in log.latencies.values())
    if requests_sent:
        web_ms, db_ms = cpu["web"] / requests_sent * 1e3, cpu["database"] / requests_sent * 1e3
        print(
            f"server CPU per request: {web_ms:.1f} ms gunicorn + {db_ms:.1f} ms PostgreSQL; "
            f"{web_ms + db_ms:.1f} ms = about {1000 / (web_ms + db_ms):.0f} saves/s per dedicated core "
            f"(this run used {(cpu['web'] + cpu['database']) / wall:.2f} cores of {os.cpu_count()}; "
            f"the {args.readers} client threads, on the same machine, {client_cpu / wall:.2f})"
        )
    errors = [e for log in logs for e in log.errors]
    distinct: dict[str, int] = {}
    for e in errors:
        distinct[e] = distinct.get(e, 0) + 1
    print(f"errors: {len(errors)}" + "".join(f"\n  {n} x {e}" for e, n in sorted(distinct.items(), key=lambda kv: -kv[1])[:10]))
    stale_sent = sum(len(log.latencies["stale"]) for log in logs)
    print(f"stale saves refused with 412: {sum(log.stale_refused for log in logs)} of {stale_sent}")
    problems = verify(targets, logs)
    acked = sum(len(log.read_acks) + len(log.mask_acks) for log in logs)
    print(
        f"lost updates: {len(problems)} (checked {acked} acknowledged saves against the stored versions)"
        + "".join(f"\n  {p}" for p in problems[:10])
    )
    from spinereview.studies.services import audit_verify

    chain = audit_verify()
    print(
        f"audit chain after the run: {'intact' if chain.ok else 'BROKEN at #' + str(chain.first_bad_sequence)} ({chain.events_checked} events)"
    )
    p99_ms = _pct(all_saves, 99) * 1e3 if all_saves else float("nan")
    print(f"p99 of saves {p99_ms:.1f} ms: {'meets' if p99_ms <= 100 else 'MISSES'} the 100 ms target")
    return 1 if errors or problems or not chain.ok else 0


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _server_cpu(server_pid: int, database_url: str) -> dict[str, dict[int, float]]:
    """CPU seconds so far of gunicorn (master and workers) and of the PostgreSQL backends serving the
    bench's database (same machine), to tell the cost of a save apart from the load of a shared machine."""
    import dj_database_url
    import psycopg

    db = dj_database_url.parse(database_url)
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None, dbname="postgres"
    ) as conn:
        backends = [
            int(r[0])
            for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (db["NAME"],))
        ]
    web = [server_pid, *_children(server_pid)]
    return {"web": {pid: _process_cpu_s(pid) for pid in web}, "database": {pid: _process_cpu_s(pid) for pid in backends}}


def _cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    return {kind: sum(cpu - before[kind].get(pid, 0.0) for pid, cpu in after[kind].items()) for kind in after}


def _ensure_database(url: str) -> None:
    """Create the benchmark's PostgreSQL database if it does not exist yet."""
    import dj_database_url
    import psycopg

    db = dj_database_url.parse(url)
    if not db["ENGINE"].endswith("postgresql"):
        raise SystemExit("DATABASE_URL must be PostgreSQL: the bench measures the production set-up")
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None, dbname="postgres", autocommit=True
    ) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db["NAME"],)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def _wait_up(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            requests.get(f"{base_url}/api/schema/", timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not answer within 60 s")


if __name__ == "__main__":
    sys.exit(main())
