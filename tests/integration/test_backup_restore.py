"""Backup and restore: a study with reads and masks, backed up, restored into a fresh empty PostgreSQL
database and media folder by the `restore` command in its own process; every read version, grade,
mask version (and its file, byte for byte) and audit event is there and the audit chain verifies.
Damaged archives and non-empty targets are refused, changing nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from spinereview.imaging.services import ImportSource
from spinereview.studies.models import AuditEvent, ReadVersion, SegmentationVersion, StudyMembership
from spinereview.studies.protocols import DEFAULT_PROTOCOL
from spinereview.studies.services import assignment_create, cases_import, read_save, read_submit, segmentation_save
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
ROWS, COLUMNS, SLICES = 8, 6, 3

# The state to find again, printed as JSON by a process on the restored database.
STATE_SCRIPT = """
import hashlib, json
from pathlib import Path
from django.conf import settings
from spinereview.studies.models import AuditEvent, ReadVersion, SegmentationVersion
reads = sorted(
    [str(v.assignment_id), v.version, v.phase, v.submitted, sorted([g.level, g.condition, g.value] for g in v.grades.all())]
    for v in ReadVersion.objects.all()
)
masks = sorted(
    [str(m.assignment_id), m.version, m.sha256, m.file_path, hashlib.sha256((Path(settings.MEDIA_ROOT) / m.file_path).read_bytes()).hexdigest()]
    for m in SegmentationVersion.objects.all()
)
audit = [[e.sequence, e.action, e.hash] for e in AuditEvent.objects.order_by("sequence")]
print(json.dumps({"reads": reads, "masks": masks, "audit": audit}))
"""


def _state(media_root: Path) -> dict[str, Any]:
    reads = sorted(
        [str(v.assignment_id), v.version, v.phase, v.submitted, sorted([g.level, g.condition, g.value] for g in v.grades.all())]
        for v in ReadVersion.objects.all()
    )
    masks = sorted(
        [str(m.assignment_id), m.version, m.sha256, m.file_path, hashlib.sha256((media_root / m.file_path).read_bytes()).hexdigest()]
        for m in SegmentationVersion.objects.all()
    )
    audit = [[e.sequence, e.action, e.hash] for e in AuditEvent.objects.order_by("sequence")]
    return json.loads(json.dumps({"reads": reads, "masks": masks, "audit": audit}))


def _admin_connection() -> psycopg.Connection[Any]:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


@pytest.fixture
def empty_database() -> Iterator[Any]:
    """A function that makes a new, empty database and returns its URL; all dropped at the end."""
    made: list[str] = []
    db = connection.settings_dict

    def make() -> str:
        name = f"{db['NAME']}_restore{len(made)}"
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return _database_url(name)

    yield make
    with _admin_connection() as admin:
        for name in made:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _database_url(name: str) -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def _manage(database_url: str, media: Path, models: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=database_url, SPINEREVIEW_MEDIA_ROOT=str(media), SPINEREVIEW_MODEL_ROOT=str(models))
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


def _tables(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def study_with_reads(media_root: Path, settings: Any, tmp_path: Path) -> dict[str, Any]:
    settings.MODEL_ROOT = tmp_path / "models"
    (tmp_path / "models" / "demo@abc").mkdir(parents=True)
    (tmp_path / "models" / "demo@abc" / "config.json").write_text('{"name": "demo"}')
    study = make_reader_study(protocol=dict(DEFAULT_PROTOCOL, two_phase=False), slug="backup-study")
    readers = [make_user(username=f"backup-reader{i}") for i in (1, 2)]
    for reader in readers:
        make_membership(reader_study=study, user=reader, role=StudyMembership.Role.READER)
    sources = [
        ImportSource(f"b{z}.dcm", mr_slice(z_mm=float(z), study_uid="1.2.77.1", series_uid="1.2.77.1.1", rows=ROWS, columns=COLUMNS))
        for z in range(SLICES)
    ]
    cases_import(sources=sources, reader_study=study)
    case = study.cases.get()
    series_uid = case.case_series.get().series.series_instance_uid
    for index, reader in enumerate(readers):
        assignment = assignment_create(case=case, reader=reader)
        mask = np.zeros((SLICES, ROWS, COLUMNS), dtype=np.uint8)
        mask[1, 2:5, 1 : 3 + index] = 4
        segmentation_save(assignment=assignment, user=reader, series_instance_uid=series_uid, base_version=0, data=mask.tobytes())
        mask[2, 0, 0] = 3
        segmentation_save(assignment=assignment, user=reader, series_instance_uid=series_uid, base_version=1, data=mask.tobytes())
        values = ["0", "1", "2", "3", str(index)]
        grades = [{"level": level, "condition": "central_canal", "value": value} for level, value in zip(LEVELS, values, strict=True)]
        read_save(assignment=assignment, user=reader, base_version=0, grades=grades[:3])
        read_save(assignment=assignment, user=reader, base_version=1, grades=grades)
        read_submit(assignment=assignment, user=reader, base_version=2)
    state = _state(media_root)
    assert len(state["reads"]) == 6 and len(state["masks"]) == 4 and len(state["audit"]) >= 10
    return state


def test_backup_then_restore_into_an_empty_database_finds_everything(
    study_with_reads: dict[str, Any], media_root: Path, tmp_path: Path, empty_database: Any
) -> None:
    archive = tmp_path / "backup.tar"
    out = io.StringIO()
    call_command("backup", str(archive), stdout=out)
    assert "backup written" in out.getvalue()
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert names == ["manifest.json", "database.pgdump", "media.tar.gz", "models.tar.gz"]
    assert manifest["engine"] == "postgresql"
    assert manifest["rows"]["studies.ReadVersion"] == 6
    assert manifest["rows"]["studies.SegmentationVersion"] == 4
    assert manifest["files"]["media"] >= 3 + 4 and manifest["files"]["models"] == 1
    # A backup never overwrites an archive.
    with pytest.raises(Exception, match="already exists"):
        call_command("backup", str(archive))

    url = empty_database()
    media, models = tmp_path / "restored-media", tmp_path / "restored-models"
    restored = _manage(url, media, models, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert "row counts match the backup" in restored.stdout
    state = _manage(url, media, models, "shell", "-c", STATE_SCRIPT)
    assert state.returncode == 0, state.stderr
    assert json.loads(state.stdout.strip().splitlines()[-1]) == study_with_reads
    verified = _manage(url, media, models, "audit_verify", "--replay")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"audit chain intact: {len(study_with_reads['audit'])} event(s) verified" in verified.stdout
    # Every stored file, byte for byte (DICOM instances, masks) and the model folder.
    originals = {p.relative_to(media_root): p.read_bytes() for p in media_root.rglob("*") if p.is_file()}
    copies = {p.relative_to(media): p.read_bytes() for p in media.rglob("*") if p.is_file()}
    assert copies == originals
    assert (models / "demo@abc" / "config.json").read_text() == '{"name": "demo"}'
    # The restored installation migrates cleanly (nothing to do) and starts.
    migrate = _manage(url, media, models, "migrate", "--check")
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    # Restoring again over it is refused: the database is not empty.
    again = _manage(url, tmp_path / "other-media", models, "restore", str(archive))
    assert again.returncode != 0
    assert "is not empty" in again.stderr and "nothing was changed" in again.stderr
    # ...and so is a media folder that holds files, even with an empty database.
    second = empty_database()
    busy = _manage(second, media, tmp_path / "m2", "restore", str(archive))
    assert busy.returncode != 0 and "already holds files" in busy.stderr
    assert _tables(second) == 0


def test_a_write_during_the_backup_does_not_make_the_manifest_disagree_with_the_dump(
    study_with_reads: dict[str, Any], tmp_path: Path, empty_database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live server keeps writing while a backup runs (the worker computes a report, a reader saves):
    a row committed after the row counts are read must not reach the dump either."""
    from spinereview.core import backup

    counted = backup._row_counts

    def count_then_write() -> dict[str, int]:
        rows = counted()
        with psycopg.connect(_database_url(connection.settings_dict["NAME"]), autocommit=True) as other:
            other.execute("INSERT INTO auth_group (name) VALUES ('written during the backup')")
        return rows

    monkeypatch.setattr(backup, "_row_counts", count_then_write)
    archive = tmp_path / "live.tar"
    call_command("backup", str(archive), stdout=io.StringIO())
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["rows"]["auth.Group"] == 0
    restored = _manage(empty_database(), tmp_path / "live-media", tmp_path / "live-models", "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert "row counts match the backup" in restored.stdout


def _rewrite(archive: Path, target: Path, change: Any) -> None:
    """A copy of ``archive`` with ``change(name, data) -> data`` applied to each member (manifest untouched)."""
    with tarfile.open(archive) as source, tarfile.open(target, "w") as copy:
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            data = change(member.name, data)
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            copy.addfile(info, io.BytesIO(data))


def test_damaged_archives_are_refused_and_change_nothing(study_with_reads: dict[str, Any], tmp_path: Path, empty_database: Any) -> None:
    archive = tmp_path / "backup.tar"
    call_command("backup", str(archive), stdout=io.StringIO())
    url = empty_database()
    media, models = tmp_path / "media-target", tmp_path / "models-target"

    def refused(path: Path, message: str) -> None:
        result = _manage(url, media, models, "restore", str(path))
        assert result.returncode != 0, result.stdout
        assert message in result.stderr, result.stderr
        assert "nothing was changed" in result.stderr
        assert _tables(url) == 0, "the database is still empty"
        assert not [p for p in media.rglob("*") if p.is_file()] if media.exists() else True
        assert not list(media.glob(".restore-*")) if media.exists() else True, "no staging folder left behind"

    flipped = tmp_path / "flipped.tar"

    def flip(name: str, data: bytes) -> bytes:
        if name != "database.pgdump":
            return data
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]

    _rewrite(archive, flipped, flip)
    refused(flipped, "database.pgdump is damaged")
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    refused(truncated, "truncated")
    missing = tmp_path / "missing.tar"
    with tarfile.open(archive) as source, tarfile.open(missing, "w") as copy:
        for member in source.getmembers():
            if member.name != "media.tar.gz":
                copy.addfile(member, source.extractfile(member))
    refused(missing, "incomplete: media.tar.gz missing")
    not_tar = tmp_path / "notes.txt"
    not_tar.write_text("hello")
    refused(not_tar, "not a readable backup archive")
    refused(tmp_path / "absent.tar", "is not a file")
    # A media tar reaching outside the media folder, with checksums that match: refused all the same.
    evil_media = io.BytesIO()
    with tarfile.open(fileobj=evil_media, mode="w:gz") as tar:
        payload = b"owned"
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    evil = tmp_path / "evil.tar"

    def swap_media(name: str, data: bytes) -> bytes:
        return evil_media.getvalue() if name == "media.tar.gz" else data

    with tarfile.open(archive) as source:
        manifest = json.loads(source.extractfile("manifest.json").read())  # type: ignore[union-attr]
    manifest["members"]["media.tar.gz"] = {"bytes": len(evil_media.getvalue()), "sha256": hashlib.sha256(evil_media.getvalue()).hexdigest()}
    _rewrite(archive, evil, lambda name, data: json.dumps(manifest).encode() if name == "manifest.json" else swap_media(name, data))
    refused(evil, "not a plain file or folder inside the media folder")
    assert not (tmp_path / "escaped.txt").exists()
    # The intact archive still restores into the same, untouched target.
    assert _manage(url, media, models, "restore", "--verify-only", str(archive)).returncode == 0
    assert _manage(url, media, models, "restore", str(archive)).returncode == 0
