"""DICOM ingest on PostgreSQL: all or nothing, idempotent, files and index rows together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from spinereview.imaging.models import DicomInstance, DicomSeries, DicomStudy
from spinereview.imaging.services import ImportRejectedError, ImportSource, dicom_instances_import
from tests.dicom_files import mr_slice

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _folder(tmp_path: Path, n: int = 3) -> Path:
    folder = tmp_path / "series"
    folder.mkdir()
    for i in range(n):
        (folder / f"IM{i:04d}.dcm").write_bytes(mr_slice(z_mm=5.0 * i, study_uid="1.2.826.0.1.99", series_uid="1.2.826.0.1.99.1"))
    return folder


def test_import_command_stores_files_and_index(tmp_path: Path, media_root: Path) -> None:
    call_command("import_dicom", str(_folder(tmp_path)))
    assert DicomStudy.objects.count() == 1
    series = DicomSeries.objects.get()
    assert series.modality == "MR"
    instances = list(series.instances.order_by("slice_position_mm"))
    assert [i.slice_position_mm for i in instances] == [0.0, 5.0, 10.0]
    for instance in instances:
        assert (media_root / instance.file_path).is_file()
        assert instance.dicom_json["00080060"] == {"vr": "CS", "Value": ["MR"]}
        assert "7FE00010" not in instance.dicom_json


def test_reimport_is_idempotent(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    first = dicom_instances_import(sources=[ImportSource(p.name, p.read_bytes()) for p in sorted(folder.iterdir())])
    second = dicom_instances_import(sources=[ImportSource(p.name, p.read_bytes()) for p in sorted(folder.iterdir())])
    assert (first.instances_created, first.instances_skipped, len(first.new_series_ids)) == (3, 0, 1)
    assert (second.instances_created, second.instances_skipped, len(second.new_series_ids)) == (0, 3, 0)
    assert DicomInstance.objects.count() == 3


def test_a_broken_file_rejects_the_folder_and_changes_nothing(tmp_path: Path, media_root: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "report.pdf").write_bytes(b"%PDF-1.4 not an image")
    before = sorted(media_root.rglob("*"))
    with pytest.raises(CommandError) as info:
        call_command("import_dicom", str(folder))
    assert "nothing was imported" in str(info.value)
    assert "report.pdf: not a DICOM file" in str(info.value)
    assert DicomStudy.objects.count() == 0
    assert DicomInstance.objects.count() == 0
    assert sorted(media_root.rglob("*")) == before


def test_series_claimed_by_another_study_is_refused(media_root: Path) -> None:
    dicom_instances_import(sources=[ImportSource("a", mr_slice(study_uid="1.2.3", series_uid="1.2.3.7"))])
    before = sorted(media_root.rglob("*"))
    with pytest.raises(ImportRejectedError, match="already belongs to another study"):
        dicom_instances_import(sources=[ImportSource("b", mr_slice(study_uid="1.2.4", series_uid="1.2.3.7"))])
    assert DicomStudy.objects.count() == 1
    assert DicomInstance.objects.count() == 1
    assert sorted(media_root.rglob("*")) == before  # the refused file, written while checking went on, and its folders are gone


def test_the_same_instance_twice_in_one_batch_is_stored_once(media_root: Path) -> None:
    data = mr_slice(study_uid="1.2.826.0.1.98", series_uid="1.2.826.0.1.98.1")
    result = dicom_instances_import(sources=[ImportSource("a.dcm", data), ImportSource("copy-of-a.dcm", data)])
    assert (result.instances_created, result.instances_skipped) == (1, 1)
    (stored,) = DicomInstance.objects.all()
    assert result.stored_sop_instance_uids[0][1] == result.stored_sop_instance_uids[1][1] == stored.sop_instance_uid
    assert stored.pixel_data_offset is not None
    assert (media_root / stored.file_path).read_bytes()[stored.pixel_data_offset :] == np.arange(48, dtype="<u2").tobytes()


def test_a_lost_race_retries_once_then_refuses_cleanly(monkeypatch: pytest.MonkeyPatch, media_root: Path) -> None:
    from django.db import IntegrityError

    from spinereview.imaging import services

    original = services._rows_insert
    failures = {"left": 1}

    def racing(*args: object, **kwargs: object) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise IntegrityError("duplicate key value violates unique constraint (simulated concurrent import)")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    # The UID mappings and instance rows are inserted together: where a concurrent import's rows collide.
    monkeypatch.setattr(services, "_rows_insert", racing)
    sources = (ImportSource(f"{z}.dcm", mr_slice(z_mm=float(z), study_uid="1.2.826.0.1.97", series_uid="1.2.826.0.1.97.1")) for z in range(2))
    result = dicom_instances_import(sources=sources)  # a generator: the retry must not find it exhausted
    assert result.instances_created == 2
    failures["left"] = 2
    before = sorted(media_root.rglob("*"))
    with pytest.raises(ImportRejectedError, match="being imported concurrently"):
        dicom_instances_import(sources=[ImportSource("c.dcm", mr_slice(study_uid="1.2.826.0.1.96", series_uid="1.2.826.0.1.96.1"))])
    assert DicomInstance.objects.count() == 2
    assert sorted(media_root.rglob("*")) == before


def test_a_lost_import_never_removes_a_file_another_import_may_have_stored(monkeypatch: pytest.MonkeyPatch, media_root: Path) -> None:
    """An instance whose UID is already mapped is stored at a path a concurrent import of it shares: when this
    import fails, that file stays (the other import may have committed its row); files at paths new to this
    import are removed."""
    from django.db import IntegrityError

    from spinereview.imaging import services

    known = mr_slice(z_mm=1.0, study_uid="1.2.826.0.1.95", series_uid="1.2.826.0.1.95.1")
    dicom_instances_import(sources=[ImportSource("known.dcm", known)])
    (stored,) = DicomInstance.objects.filter(series__study__reidentification__original_study_instance_uid="1.2.826.0.1.95")
    shared = media_root / stored.file_path
    stored.delete()  # as if its import were still running: mapped, not yet in the index
    before = sorted(media_root.rglob("*"))

    def racing(*args: object, **kwargs: object) -> None:
        raise IntegrityError("duplicate key value violates unique constraint (simulated concurrent import)")

    monkeypatch.setattr(services, "_rows_insert", racing)
    new = mr_slice(z_mm=2.0, study_uid="1.2.826.0.1.95", series_uid="1.2.826.0.1.95.1")
    with pytest.raises(ImportRejectedError, match="being imported concurrently"):
        dicom_instances_import(sources=[ImportSource("known.dcm", known), ImportSource("new.dcm", new)])
    assert shared.is_file()
    assert sorted(media_root.rglob("*")) == before  # the new instance's file is gone


def test_a_file_is_written_even_if_its_folder_vanished_after_it_was_made(tmp_path: Path) -> None:
    """A concurrent import that made a study's folder and then failed removes it (empty); a write into it goes on."""
    from spinereview.imaging.services import _write_atomically

    target = tmp_path / "dicom" / "1.2" / "1.2.3" / "x.dcm"
    _write_atomically(target, b"DICM", make_parents=False)
    assert target.read_bytes() == b"DICM"
    assert [p.name for p in target.parent.iterdir()] == ["x.dcm"]
