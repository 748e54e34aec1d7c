"""50 concurrent writers on one read (threads, each with its own PostgreSQL connection): every save
either lands as its own new version or is refused with 412; retried on the current version, all land.
Zero lost updates."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections

from spinereview.core.errors import PreconditionFailedError
from spinereview.imaging.services import ImportSource
from spinereview.studies.models import ReadVersion, StudyMembership
from spinereview.studies.services import assignment_create, cases_import, read_save
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WRITERS = 50


def test_fifty_concurrent_writers_lose_no_update() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency need PostgreSQL")
    study = make_reader_study()
    reader = make_user(username="busy-reader")
    make_membership(reader_study=study, user=reader, role=StudyMembership.Role.READER)
    cases_import(sources=[ImportSource("a.dcm", mr_slice(study_uid="1.2.6.1", series_uid="1.2.6.1.1"))], reader_study=study)
    assignment = assignment_create(case=study.cases.get(), reader=reader)
    start = threading.Barrier(WRITERS)
    refusals: list[int] = []
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            start.wait()
            base = 0
            while True:
                try:
                    # The writer's own index, stored as its reading time, marks which save landed.
                    read_save(assignment=assignment, user=reader, base_version=base, grades=[], elapsed_s=float(index))
                    return
                except PreconditionFailedError as exc:
                    refusals.append(index)
                    base = int(exc.extra["current_version"])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads: list[threading.Thread] = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    versions: list[Any] = list(ReadVersion.objects.filter(assignment=assignment).order_by("version").values_list("version", "elapsed_s"))
    assert [v for v, _ in versions] == list(range(1, WRITERS + 1))  # one version per save, no gaps, no duplicates
    assert sorted(int(e) for _, e in versions) == list(range(WRITERS))  # every writer's save landed exactly once
    assert refusals  # the writers really did collide, and the losers were told to reload
