"""Backup and restore on SQLite (the demo's database): dumpdata JSON in, migrate + loaddata out."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

MAKE_DATA = """
from spinereview.accounts.models import User
from spinereview.studies.models import ReaderStudy
from spinereview.studies.protocols import DEFAULT_PROTOCOL, protocol_validate
User.objects.create_user(username="kept-user", password="quiet-lumbar-orbit-57")
ReaderStudy.objects.create(name="Kept study", slug="kept-study", protocol=protocol_validate(DEFAULT_PROTOCOL))
"""
SHOW_DATA = """
from spinereview.accounts.models import User
from spinereview.studies.models import ReaderStudy
user = User.objects.get(username="kept-user")
print(user.check_password("quiet-lumbar-orbit-57"), list(ReaderStudy.objects.values_list("slug", flat=True)))
"""


def _manage(tmp: Path, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp / db}",
        SPINEREVIEW_MEDIA_ROOT=str(tmp / f"{db}-media"),
        SPINEREVIEW_MODEL_ROOT=str(tmp / f"{db}-media" / "models"),
    )
    env.pop("ALLOW_DEBUG_WITH_DATABASE", None)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


def test_sqlite_backup_restores_into_a_new_database(tmp_path: Path) -> None:
    assert _manage(tmp_path, "source.sqlite3", "migrate", "-v", "0").returncode == 0
    made = _manage(tmp_path, "source.sqlite3", "shell", "-c", MAKE_DATA)
    assert made.returncode == 0, made.stderr
    (tmp_path / "source.sqlite3-media" / "dicom").mkdir(parents=True)
    (tmp_path / "source.sqlite3-media" / "dicom" / "a.dcm").write_bytes(b"DICM-bytes")
    archive = tmp_path / "demo-backup.tar"
    backup = _manage(tmp_path, "source.sqlite3", "backup", str(archive))
    assert backup.returncode == 0, backup.stderr
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["manifest.json", "database.json", "media.tar.gz"]
        assert json.loads(tar.extractfile("manifest.json").read())["engine"] == "sqlite"  # type: ignore[union-attr]

    restored = _manage(tmp_path, "target.sqlite3", "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    shown = _manage(tmp_path, "target.sqlite3", "shell", "-c", SHOW_DATA)
    assert shown.stdout.strip().splitlines()[-1] == "True ['kept-study']"
    assert (tmp_path / "target.sqlite3-media" / "dicom" / "a.dcm").read_bytes() == b"DICM-bytes"
    # Into the now non-empty database: refused.
    again = _manage(tmp_path, "target.sqlite3", "restore", str(archive))
    assert again.returncode != 0
    assert "is not empty" in again.stderr
    # A manifest from another program is refused before anything happens.
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    manifest["format"] = "something-else"
    other = tmp_path / "other.tar"
    data = json.dumps(manifest).encode()
    with tarfile.open(other, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    refused = _manage(tmp_path, "fresh.sqlite3", "restore", str(other))
    assert refused.returncode != 0
    assert "not a SpineReview backup" in refused.stderr
