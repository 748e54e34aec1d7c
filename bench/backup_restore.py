"""Backup and restore figures: `manage.py backup` of a PostgreSQL installation with phantom cases, then
`manage.py restore` into a new empty database and media folder; prints sizes, times and throughput.

What it does:
  1. (re)creates the database <--db> and <--db>_restored on the PostgreSQL of --server, migrates the
     first and imports --cases phantom cases (`python -m ml phantom`, three series each) into a reader
     study, with a media folder under a temporary directory;
  2. runs `manage.py backup` (pg_dump custom format + media tar + manifest), timed, in its own process;
  3. runs `manage.py restore` into the empty second database and a new media folder, timed, which also
     verifies every checksum and compares every model's row count with the manifest;
  4. prints the archive's size per member and both times; drops both databases.

Run (the shared PostgreSQL; your own database name):
  .venv/bin/python bench/backup_restore.py [--cases 4] [--db sr_bench_backup]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]

IMPORT = """
import os
from pathlib import Path
from spinereview.imaging.services import sources_from_path
from spinereview.studies.models import ReaderStudy
from spinereview.studies.protocols import DEFAULT_PROTOCOL, protocol_validate
from spinereview.studies.services import cases_import
study = ReaderStudy.objects.create(name="Backup bench", slug="backup-bench", protocol=protocol_validate(DEFAULT_PROTOCOL))
for case in sorted(p for p in Path(os.environ["BENCH_PHANTOM_DIR"]).iterdir() if (p / "dicom").is_dir()):
    cases_import(sources=sources_from_path(case / "dicom"), reader_study=study)
print(study.cases.count())
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--db", default="sr_bench_backup")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    source_db, target_db = args.db, f"{args.db}_restored"
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
        for name in (source_db, target_db):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    tmp = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    base = dict(os.environ, DEBUG="0", SECRET_KEY="bench-backup-restore-key-0123456789abcdef", CELERY_BROKER_URL="memory://")

    base["BENCH_PHANTOM_DIR"] = str(tmp / "phantom")

    def manage(db: str, media: str, *command: str) -> tuple[float, str]:
        env = base | {
            "DATABASE_URL": f"{args.server}/{db}",
            "SPINEREVIEW_MEDIA_ROOT": str(tmp / media),
            "SPINEREVIEW_MODEL_ROOT": str(tmp / media / "models"),
        }
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command[:2])} failed: {result.stderr[-2000:]}")
        return time.perf_counter() - started, result.stdout.strip()

    try:
        subprocess.run(
            [sys.executable, "-m", "ml", "phantom", "--out", str(tmp / "phantom"), "--seed", "7", "--cases", str(args.cases)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        manage(source_db, "media", "migrate", "-v", "0")
        manage(source_db, "media", "shell", "-c", IMPORT)
        media_bytes = sum(p.stat().st_size for p in (tmp / "media").rglob("*") if p.is_file())
        media_files = sum(1 for p in (tmp / "media").rglob("*") if p.is_file())
        archive = tmp / "backup.tar"
        backup_s, _ = manage(source_db, "media", "backup", str(archive))
        restore_s, restored = manage(target_db, "restored-media", "restore", str(archive))
        with tarfile.open(archive) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        print(
            f"cases: {args.cases} phantom cases, {media_files} media files, {media_bytes / 1e6:.1f} MB; {sum(manifest['rows'].values())} database rows"
        )
        for name, member in manifest["members"].items():
            print(f"  {name:16s} {member['bytes'] / 1e6:8.2f} MB")
        size = archive.stat().st_size
        print(f"archive: {size / 1e6:.1f} MB ({size / media_bytes:.0%} of the media)")
        print(f"backup:  {backup_s:6.1f} s  ({media_bytes / 1e6 / backup_s:.1f} MB/s of media, process start included)")
        print(f"restore: {restore_s:6.1f} s  ({media_bytes / 1e6 / restore_s:.1f} MB/s; checksums verified, row counts compared)")
        print(f"  {restored}")
    finally:
        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
            for name in (source_db, target_db):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
