"""Backup and restore of the whole installation: the database and the media (and model) files.

One archive (an uncompressed tar) holds:

- ``manifest.json``: format and version, the database engine, the applied migrations, the row
  count of every model, and for every other member its size and SHA-256;
- ``database.pgdump`` (PostgreSQL: ``pg_dump --format=custom``, restored with ``pg_restore``) or
  ``database.json`` (SQLite: ``dumpdata``, restored with ``migrate`` + ``loaddata``);
- ``media.tar.gz``: everything under MEDIA_ROOT (DICOM, masks, AI results, uploaded models);
- ``models.tar.gz``: MODEL_ROOT, when it exists and lies outside MEDIA_ROOT.

The database is dumped first (row counts and dump from one snapshot), then the files: files are written before the rows that name them
commit and are never deleted, so every file a dumped row refers to is in the archive.

Restore refuses, changing nothing, unless the archive is complete and every checksum matches, its
media members are plain files and folders inside MEDIA_ROOT, its migrations are known to this
code, the target database has no tables and MEDIA_ROOT (and MODEL_ROOT) hold no files. It then
unpacks the files into a hidden folder inside their destination, loads the database in one
transaction, moves the files into place, and checks every model's row count against the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader

from spinereview.core.errors import ApplicationError

FORMAT = "spinereview-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK = 1024 * 1024
# dumpdata leaves out what migrate recreates (content types, permissions) and what expires (sessions).
DUMPDATA_EXCLUDE = ["contenttypes", "auth.permission", "sessions", "admin.logentry"]


class BackupError(ApplicationError):
    """A backup or restore that cannot be done; nothing was changed."""


@dataclass
class BackupSummary:
    path: Path
    engine: str
    members: dict[str, dict[str, Any]]
    rows: dict[str, int]

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass
class RestoreSummary:
    engine: str
    rows: dict[str, int]
    files: int
    checks: list[str] = field(default_factory=list)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _engine() -> str:
    engine = connection.settings_dict["ENGINE"]
    if engine.endswith("postgresql"):
        return "postgresql"
    if engine.endswith("sqlite3"):
        return "sqlite"
    raise BackupError(f"database engine {engine} is not supported (PostgreSQL or SQLite)")


def _pg_command_env() -> tuple[list[str], dict[str, str]]:
    db = connection.settings_dict
    args = ["--dbname", str(db["NAME"])]
    if db.get("HOST"):
        args += ["--host", str(db["HOST"])]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", str(db["USER"])]
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    sslmode = (db.get("OPTIONS") or {}).get("sslmode")
    if sslmode:
        env["PGSSLMODE"] = str(sslmode)
    return args, env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed: {what} needs the PostgreSQL client tools (postgresql-client)")
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{what} failed ({command[0]} exit {result.returncode}): {result.stderr.strip()[-2000:]}")


def _row_counts() -> dict[str, int]:
    counts = {}
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        counts[model._meta.label] = model._default_manager.using("default").count()
    return counts


def _applied_migrations() -> list[str]:
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return sorted(f"{app}.{name}" for app, name in loader.applied_migrations)


def _model_root() -> Path | None:
    model_root = Path(settings.MODEL_ROOT).resolve()
    media_root = Path(settings.MEDIA_ROOT).resolve()
    if model_root == media_root or media_root in model_root.parents:
        return None  # already in media.tar.gz
    return model_root


def _tar_folder(folder: Path, target: Path) -> int:
    files = 0
    with tarfile.open(target, "w:gz", compresslevel=1) as archive:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_symlink() or not (path.is_file() or path.is_dir()):
                    continue  # only plain files and folders are data
                archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
                files += path.is_file()
    return files


def backup_create(*, output: Path) -> BackupSummary:
    """Writes the archive to ``output`` (refused if it exists); a failure leaves no archive behind."""
    output = output.resolve()
    if output.exists():
        raise BackupError(f"{output} already exists: choose a new file name (a backup never overwrites one)")
    if not output.parent.is_dir():
        raise BackupError(f"{output.parent} is not a folder")
    engine = _engine()
    with tempfile.TemporaryDirectory(prefix="spinereview-backup-", dir=output.parent) as work_dir:
        work = Path(work_dir)
        members: dict[str, dict[str, Any]] = {}
        # The row counts, the migrations and the dump are read from one snapshot of the database, so a
        # server that keeps writing meanwhile (a report computed, a read saved) cannot make the manifest
        # disagree with the dump: PostgreSQL exports this transaction's snapshot to pg_dump; SQLite's read
        # transaction holds its snapshot for dumpdata, which runs on this same connection.
        with transaction.atomic():
            if engine == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    cursor.execute("SELECT pg_export_snapshot()")
                    snapshot = cursor.fetchone()[0]
            rows = _row_counts()
            migrations = _applied_migrations()
            if engine == "postgresql":
                dump = work / "database.pgdump"
                args, env = _pg_command_env()
                command = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}"]
                _run([*command, "--file", str(dump), *args], env, "pg_dump")
            else:
                dump = work / "database.json"
                call_command("dumpdata", natural_foreign=True, exclude=DUMPDATA_EXCLUDE, output=str(dump), verbosity=0)
        media_files = _tar_folder(Path(settings.MEDIA_ROOT), work / "media.tar.gz")
        parts = [dump, work / "media.tar.gz"]
        model_root = _model_root()
        model_files = 0
        if model_root is not None and model_root.is_dir():
            model_files = _tar_folder(model_root, work / "models.tar.gz")
            parts.append(work / "models.tar.gz")
        for part in parts:
            members[part.name] = {"bytes": part.stat().st_size, "sha256": _sha256_file(part)}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(),
            "engine": engine,
            "migrations": migrations,
            "rows": rows,
            "files": {"media": media_files, "models": model_files},
            "members": members,
        }
        partial = output.with_name(output.name + ".partial")
        with tarfile.open(partial, "w") as archive:
            data = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            info.mtime = int(datetime.now(UTC).timestamp())
            archive.addfile(info, io.BytesIO(data))
            for part in parts:
                archive.add(part, arcname=part.name, recursive=False)
        os.replace(partial, output)
    return BackupSummary(path=output, engine=engine, members=members, rows=rows)


# ---- restore ---------------------------------------------------------------------------------


def _read_manifest(archive: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = archive.getmember(MANIFEST)
        stream = archive.extractfile(member)
        manifest = json.loads(stream.read()) if stream is not None else None
    except KeyError:
        raise BackupError(f"not a SpineReview backup: no {MANIFEST}") from None
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"{MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(
            f"not a SpineReview backup ({MANIFEST} names format {manifest.get('format') if isinstance(manifest, dict) else None!r})"
        )
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"backup format version {manifest.get('format_version')!r} is not supported (this version reads {FORMAT_VERSION})"
        )
    for key in ("engine", "migrations", "rows", "members"):
        if key not in manifest:
            raise BackupError(f"{MANIFEST} lacks {key!r}")
    return manifest


@contextmanager
def _open_archive(path: Path) -> Iterator[tarfile.TarFile]:
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    try:
        with tarfile.open(path, "r:") as archive:
            yield archive
    except tarfile.TarError as exc:
        raise BackupError(f"{path.name} is not a readable backup archive (truncated or corrupt): {exc}") from None
    except EOFError:
        raise BackupError(f"{path.name} is truncated") from None


def backup_verify(*, archive_path: Path, extract_to: Path | None = None) -> dict[str, Any]:
    """Checks every member's size and checksum (and extracts them to ``extract_to``); returns the manifest."""
    with _open_archive(archive_path) as archive:
        manifest = _read_manifest(archive)
        expected: dict[str, dict[str, Any]] = manifest["members"]
        seen: set[str] = set()
        for member in archive:
            if member.name == MANIFEST:
                continue
            if member.name not in expected or not member.isfile():
                raise BackupError(f"unexpected member {member.name!r} in the archive")
            stream = archive.extractfile(member)
            if stream is None:
                raise BackupError(f"member {member.name!r} cannot be read")
            digest = hashlib.sha256()
            size = 0
            target = (extract_to / member.name).open("wb") if extract_to is not None else None
            try:
                while block := stream.read(CHUNK):
                    digest.update(block)
                    size += len(block)
                    if target is not None:
                        target.write(block)
            finally:
                if target is not None:
                    target.close()
            if size != expected[member.name]["bytes"] or digest.hexdigest() != expected[member.name]["sha256"]:
                raise BackupError(f"{member.name} is damaged: its checksum does not match the manifest")
            seen.add(member.name)
        missing = sorted(set(expected) - seen)
        if missing:
            raise BackupError(f"the archive is incomplete: {', '.join(missing)} missing")
    return manifest


def _safe_members(tar_path: Path) -> list[tarfile.TarInfo]:
    """The members of a media/models tar, refused whole if any is not a plain file or folder inside it."""
    try:
        with tarfile.open(tar_path, "r:gz") as archive:
            members = archive.getmembers()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"{tar_path.name} cannot be read: {exc}") from None
    for member in members:
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise BackupError(f"{tar_path.name} holds {member.name!r}, which is not a plain file or folder inside the media folder")
    return members


def _files_in(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if not path.is_dir()] if folder.is_dir() else []


def _database_is_empty() -> list[str]:
    return sorted(connection.introspection.table_names())


def _stage(tar_path: Path, destination: Path) -> tuple[Path, int]:
    """Unpacks a files tar into a hidden folder inside ``destination``: the same file system even when
    the destination is a mounted volume, so the final move is a rename."""
    members = _safe_members(tar_path)
    destination.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=destination))
    with tarfile.open(tar_path, "r:gz") as archive:
        archive.extractall(staging, members=members, filter="data")
    return staging, sum(1 for member in members if member.isfile())


def _move_into(staging: Path, destination: Path) -> None:
    for entry in sorted(staging.iterdir()):
        os.replace(entry, destination / entry.name)
    staging.rmdir()


def backup_restore(*, archive_path: Path) -> RestoreSummary:
    archive_path = archive_path.resolve()
    engine = _engine()
    media_root = Path(settings.MEDIA_ROOT)
    model_root = _model_root()
    # 1. The target must be empty: no table in the database, no file in the media folders.
    tables = _database_is_empty()
    if tables:
        raise BackupError(
            f"the database {connection.settings_dict['NAME']!r} is not empty ({len(tables)} table(s), e.g. {', '.join(tables[:3])}): "
            "restore only into a new, empty database (createdb), before any migrate"
        )
    for folder in (media_root, model_root):
        if folder is not None and _files_in(folder):
            raise BackupError(f"{folder} already holds files: restore only into an empty media folder")
    with tempfile.TemporaryDirectory(prefix="spinereview-restore-") as work_dir:
        work = Path(work_dir)
        # 2. The archive: complete, checksums, engine, migrations this code knows.
        manifest = backup_verify(archive_path=archive_path, extract_to=work)
        if manifest["engine"] != engine:
            raise BackupError(f"the backup is of a {manifest['engine']} database; this installation uses {engine}")
        loader = MigrationLoader(None, ignore_no_migrations=True)
        known = {f"{app}.{name}" for app, name in loader.disk_migrations}
        unknown = sorted(set(manifest["migrations"]) - known)
        if unknown:
            raise BackupError(
                f"the backup was made by a newer SpineReview (unknown migrations: {', '.join(unknown[:5])}): restore it with that version"
            )
        # 3. Files unpacked into a hidden folder in their destination (nothing in place yet).
        stagings: list[tuple[Path, Path]] = []
        files = 0
        try:
            staging, count = _stage(work / "media.tar.gz", media_root)
            stagings.append((staging, media_root))
            files += count
            if "models.tar.gz" in manifest["members"]:
                if model_root is None:
                    raise BackupError("the backup has a separate model folder; set SPINEREVIEW_MODEL_ROOT outside the media folder")
                staging, count = _stage(work / "models.tar.gz", model_root)
                stagings.append((staging, model_root))
                files += count
            # 4. The database, in one transaction.
            if engine == "postgresql":
                args, env = _pg_command_env()
                _run(
                    [
                        "pg_restore",
                        "--single-transaction",
                        "--exit-on-error",
                        "--no-owner",
                        "--no-privileges",
                        *args,
                        str(work / "database.pgdump"),
                    ],
                    env,
                    "pg_restore",
                )
            else:
                _restore_sqlite(work / "database.json")
        except BaseException:
            for staging, _ in stagings:
                shutil.rmtree(staging, ignore_errors=True)
            raise
    # 5. Files into place, then check the result against the manifest.
    for staging, destination in stagings:
        _move_into(staging, destination)
    connection.close()  # pg_restore wrote through another connection
    rows = _row_counts()
    checks = []
    for label, expected in sorted(manifest["rows"].items()):
        if label.split(".")[0] in {"contenttypes", "sessions", "admin"} or label == "auth.Permission":
            continue  # recreated by migrate (SQLite) or not kept
        if rows.get(label) != expected:
            checks.append(f"{label}: {rows.get(label)} row(s) restored, {expected} in the backup")
    if checks:
        raise BackupError("the restored database does not match the backup: " + "; ".join(checks))
    return RestoreSummary(engine=engine, rows=rows, files=files)


def _restore_sqlite(dump: Path) -> None:
    try:
        json.loads(dump.read_text())
    except ValueError:
        raise BackupError("database.json is not valid JSON") from None
    call_command("migrate", interactive=False, verbosity=0)
    try:
        call_command("loaddata", str(dump), verbosity=0)
    except Exception as exc:
        # Leave the database empty again, as it was: drop what migrate created.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = OFF")
            for table in connection.introspection.table_names(cursor):
                cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
        raise BackupError(f"loading database.json failed: {exc}") from None
