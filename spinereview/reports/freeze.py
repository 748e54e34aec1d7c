"""Data freeze: a study's analysis, frozen for a paper into a numbered, immutable snapshot.

A freeze writes, once, under ``MEDIA_ROOT/freezes/<study id>/v<version>/``:

* ``reads.csv`` -- every submitted read (the tidy table of :mod:`spinereview.reports.exports`);
* ``reference.csv`` -- the reference grade of each item; ``ai.csv`` -- the AI's DSCA and grades;
* ``statistics.json`` / ``statistics.csv`` -- the full statistics report (bootstrap seed included);
* ``protocol.json`` -- the normalised protocol;
* ``manifest.json`` -- study, version, who and when, software version (``git describe`` or the package
  version), the fingerprint of the inputs, and the sha256 and size of every file above;
* ``<slug>-freeze-v<version>.zip`` -- all of them in one archive with fixed member times and order.

The database row holds the sha256 of every file and of the archive. Re-exporting a freeze streams the
stored archive after checking its sha256, so the bytes are those of the day of the freeze, whatever
reads were added since; a file changed on disk is refused, never served.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from spinereview.accounts.models import User
from spinereview.core.errors import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError
from spinereview.reports.exports import (
    AI_COLUMNS,
    READ_COLUMNS,
    REFERENCE_COLUMNS,
    STATISTICS_COLUMNS,
    ai_rows,
    csv_stream,
    read_rows,
    reference_rows,
    statistics_rows,
)
from spinereview.reports.models import DataFreeze
from spinereview.reports.services import agreement_report_compute, software_version
from spinereview.studies.models import ReaderStudy, StudyMembership
from spinereview.studies.services import audit_record

FREEZE_FILES = ("reads.csv", "reference.csv", "ai.csv", "statistics.json", "statistics.csv", "protocol.json", "manifest.json")
# Zip member times are fixed so that the archive depends on the files' content only.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(path: Path, chunks: Iterable[bytes]) -> None:
    with path.open("xb") as stream:  # "x": a freeze never overwrites a file
        for chunk in chunks:
            stream.write(chunk)


def _archive(folder: Path, name: str) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "x", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for member in FREEZE_FILES:
            info = zipfile.ZipInfo(member, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o444 << 16
            with (folder / member).open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)
    return path


def _may_freeze(user: User, reader_study: ReaderStudy) -> bool:
    return user.is_staff or StudyMembership.objects.filter(reader_study=reader_study, user=user, role=StudyMembership.Role.LEAD).exists()


def data_freeze_create(*, reader_study: ReaderStudy, user: User, note: str = "") -> DataFreeze:
    """Freeze the study's reads, reference, AI results, statistics and protocol as the next version.

    Leads and staff only (403 otherwise). Versions are numbered per study from 1 under a row lock, so
    two concurrent freezes get different numbers.
    """
    if not _may_freeze(user, reader_study):
        raise PermissionDeniedError("Only the study's lead may freeze its data")
    if len(note) > 2000:
        raise ApplicationError("The note is limited to 2000 characters")
    report = agreement_report_compute(reader_study=reader_study)
    with transaction.atomic():
        ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
        version = (DataFreeze.objects.filter(reader_study=reader_study).order_by("-version").values_list("version", flat=True).first() or 0) + 1
        relative = Path("freezes") / str(reader_study.pk) / f"v{version}"
        folder = Path(settings.MEDIA_ROOT) / relative
        if folder.exists():
            raise ConflictError(f"The folder of freeze version {version} exists already ({relative}); it is never overwritten")
        folder.mkdir(parents=True)
        try:
            _write(folder / "reads.csv", csv_stream(READ_COLUMNS, read_rows(reader_study=reader_study)))
            _write(folder / "reference.csv", csv_stream(REFERENCE_COLUMNS, reference_rows(reader_study=reader_study)))
            _write(folder / "ai.csv", csv_stream(AI_COLUMNS, ai_rows(reader_study=reader_study)))
            _write(folder / "statistics.json", [_json_bytes(report.report)])
            _write(folder / "statistics.csv", csv_stream(STATISTICS_COLUMNS, statistics_rows(report.report)))
            _write(folder / "protocol.json", [_json_bytes(reader_study.protocol)])
            files = {name: {"sha256": _sha256_file(folder / name), "bytes": (folder / name).stat().st_size} for name in FREEZE_FILES if name != "manifest.json"}
            created = timezone.now()
            manifest = {
                "reader_study": {"slug": reader_study.slug, "name": reader_study.name, "id": str(reader_study.pk)},
                "freeze_version": version,
                "created": created.isoformat(),
                "created_by": user.username,
                "note": note,
                "software_version": software_version(),
                "inputs_sha256": report.inputs_sha256,
                "statistics": {"n_resamples": report.report["meta"]["n_resamples"], "seed": report.report["meta"]["seed"], "schema_version": report.report["schema_version"]},
                "files": files,
            }
            _write(folder / "manifest.json", [_json_bytes(manifest)])
            archive = _archive(folder, f"{reader_study.slug}-freeze-v{version}.zip")
            for path in folder.iterdir():
                path.chmod(0o444)
            freeze = DataFreeze.objects.create(
                reader_study=reader_study,
                version=version,
                created_by=user,
                note=note,
                software_version=software_version(),
                inputs_sha256=report.inputs_sha256,
                folder=str(relative),
                files={name: _sha256_file(folder / name) for name in FREEZE_FILES},
                archive_sha256=_sha256_file(archive),
                archive_bytes=archive.stat().st_size,
            )
            audit_record(
                actor=user.username,
                action="data.freeze",
                object_type="data_freeze",
                object_id=str(freeze.pk),
                reader_study_id=reader_study.pk,
                details={"version": version, "archive_sha256": freeze.archive_sha256},
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return freeze


def data_freeze_get(*, reader_study: ReaderStudy, version: int) -> DataFreeze:
    freeze = DataFreeze.objects.filter(reader_study=reader_study, version=version).first()
    if freeze is None:
        raise NotFoundError(f"No freeze version {version} of this study")
    return freeze


def data_freeze_archive(*, freeze: DataFreeze) -> Path:
    """The stored archive of a freeze, after checking that its bytes are those recorded at the freeze."""
    path = Path(settings.MEDIA_ROOT) / freeze.folder / f"{freeze.reader_study.slug}-freeze-v{freeze.version}.zip"
    if not path.is_file():
        raise ConflictError(f"The archive of freeze version {freeze.version} is missing from storage")
    if _sha256_file(path) != freeze.archive_sha256:
        raise ConflictError(f"The archive of freeze version {freeze.version} was altered on disk (sha256 differs); it is not served")
    return path


def data_freeze_as_dict(freeze: DataFreeze) -> dict[str, Any]:
    return {
        "version": freeze.version,
        "created": freeze.created.isoformat(),
        "created_by": freeze.created_by.username,
        "note": freeze.note,
        "software_version": freeze.software_version,
        "inputs_sha256": freeze.inputs_sha256,
        "files": freeze.files,
        "archive_sha256": freeze.archive_sha256,
        "archive_bytes": freeze.archive_bytes,
        "archive_url": f"/api/v1/reader-studies/{freeze.reader_study.slug}/freezes/{freeze.version}/archive.zip",
    }
