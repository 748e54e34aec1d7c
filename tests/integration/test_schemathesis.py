"""schemathesis over the served OpenAPI schema (/api/schema/): every operation, generated requests
(valid and invalid) sent by a signed-in study lead who also reads (token auth), against gunicorn with
production settings on a database of its own: no answer may be a 5xx.

About half the examples of an operation use the ids of real objects (the study, its case and series, the
lead's assignment, a submitted read, a saved mask) in place of generated ones, so the requests get past
the 404s into the views. SCHEMATHESIS_MAX_EXAMPLES sets the examples per operation (default 6).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok

from tests.integration.test_faults import _free_port, gunicorn_start, site_prepare, wait_until

pytestmark = pytest.mark.integration

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "6"))

SETUP = """
import json
import numpy as np
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from spinereview.accounts.models import User
from spinereview.imaging.services import ImportSource
from spinereview.studies.models import Assignment, StudyMembership
from spinereview.studies.protocols import DEFAULT_PROTOCOL, condition_categories
from spinereview.studies.services import assignments_create, cases_import, membership_add, read_save, read_submit, reader_study_create, segmentation_save
from tests.dicom_files import mr_slice

study = reader_study_create(name="Schema", slug="schema", protocol=DEFAULT_PROTOCOL)
lead = User.objects.create_user(username="lead", password="schema-password-2026")
lead.user_permissions.add(Permission.objects.get(codename="add_readerstudy", content_type__app_label="studies"))
other = User.objects.create_user(username="reader2", password="schema-password-2026")
membership_add(reader_study=study, user=lead, role=StudyMembership.Role.LEAD)
for user in (lead, other):
    membership_add(reader_study=study, user=user, role=StudyMembership.Role.READER)
sources = [ImportSource(f"{z}.dcm", mr_slice(z_mm=4.0 * z, study_uid="1.2.7.1", series_uid="1.2.7.1.1")) for z in range(3)]
cases_import(sources=sources, reader_study=study)
assignments_create(reader_study=study, actor="test")
case = study.cases.get()
series_uid = case.case_series.values_list("series__series_instance_uid", flat=True).get()
categories = condition_categories(study.protocol, "central_canal")
grades = [{"level": level, "condition": "central_canal", "value": categories[1]} for level in study.protocol["levels"]]
other_assignment = Assignment.objects.get(reader=other)
submitted = read_submit(assignment=other_assignment, user=other, base_version=read_save(assignment=other_assignment, user=other, base_version=0, grades=grades).version)
labels = np.zeros((3, 8, 6), dtype=np.uint8)
labels[1, 2:5, 2:4] = study.protocol["segmentation"]["labels"][0]["value"]
mask = segmentation_save(assignment=Assignment.objects.get(reader=lead), user=lead, series_instance_uid=series_uid, base_version=0, data=labels.tobytes())
print("SETUP " + json.dumps({
    "token": Token.objects.create(user=lead).key,
    "slug": study.slug,
    "case_id": str(case.pk),
    "series_uid": series_uid,
    "assignment": str(Assignment.objects.get(reader=lead).pk),
    "read": str(submitted.pk),
    "segmentation": str(mask.pk),
}))
"""


@pytest.fixture(scope="module")
def api_server() -> Iterator[dict[str, Any]]:
    """gunicorn (DEBUG=0) on a fresh database `<DATABASE_URL's name>_schemathesis` of the same server."""
    base = dj_database_url.parse(os.environ.get("DATABASE_URL", ""))
    if not base.get("ENGINE", "").endswith("postgresql"):
        pytest.skip("runs against PostgreSQL (DATABASE_URL), as in production")
    name = f"{base['NAME']}_schemathesis"
    admin: dict[str, Any] = {
        "host": base["HOST"] or "127.0.0.1",
        "port": base["PORT"] or 5432,
        "user": base["USER"],
        "password": base["PASSWORD"] or None,
        "dbname": "postgres",
    }
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    root = Path(tempfile.mkdtemp(prefix="spinereview-schemathesis-"))
    url = f"postgres://{base['USER']}@{admin['host']}:{admin['port']}/{name}"
    env = dict(
        os.environ, DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), DATABASE_URL=url, SPINEREVIEW_MEDIA_ROOT=str(root), SECURE_COOKIES="0"
    )
    ids = site_prepare(env, SETUP)
    port = _free_port()
    log_path = root / "web.log"
    log = open(log_path, "ab")  # noqa: SIM115 - gunicorn writes to it for its lifetime
    web = gunicorn_start(env, port=port, workers=2, timeout_s=120, log=log)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: requests.get(f"{base_url}/api/schema/", timeout=10).status_code == 200, timeout_s=60, what="gunicorn", logs=[log_path]
        )
        yield {"base_url": base_url, "log": log_path, **ids}
    finally:
        web.terminate()
        try:
            web.wait(timeout=20)
        except subprocess.TimeoutExpired:
            web.kill()
        log.close()
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _real_ids(case: Any, ids: dict[str, Any], use: bool) -> None:
    """Put the ids of existing objects in the path (the meaning of "id" depends on the path)."""
    if not use or not case.path_parameters:
        return
    path = case.operation.path
    known = {"slug": ids["slug"], "case_id": ids["case_id"], "series_uid": ids["series_uid"]}
    if path.startswith("/api/v1/assignments/"):
        known["id"] = ids["assignment"]
    elif "/reads/{id}" in path:
        known["id"] = ids["read"]
    elif "/segmentations/{id}" in path:
        known["id"] = ids["segmentation"]
    for key in case.path_parameters:
        if key in known:
            case.path_parameters[key] = known[key]


def _fuzz(operation: Any, server: dict[str, Any], failures: list[str], tried: dict[str, int]) -> None:
    """MAX_EXAMPLES valid and invalid requests of one operation; 5xx answers recorded, not raised, so every
    operation runs and the report lists them all."""
    label = f"{operation.method.upper()} {operation.path}"
    headers = {"Authorization": f"Token {server['token']}"}
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy, use_real_ids=st.booleans())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any, use_real_ids: bool) -> None:
        _real_ids(case, server, use_real_ids)
        tried[label] = tried.get(label, 0) + 1
        try:
            case.call_and_validate(base_url=server["base_url"], headers=headers, checks=[not_a_server_error], timeout=60)
        except (AssertionError, Failure, FailureGroup) as exc:  # schemathesis' failure (a 5xx)
            failures.append(f"{label}: {str(exc)[:700]}")
        except requests.RequestException as exc:
            failures.append(f"{label}: {type(exc).__name__}: {exc}")

    run()


def test_no_operation_answers_a_server_error(api_server: dict[str, Any]) -> None:
    # Driven here rather than by schemathesis.pytest.from_fixture, which fails under pytest 9 (Function._nodeid).
    schema = schemathesis.openapi.from_url(f"{api_server['base_url']}/api/schema/")
    failures: list[str] = []
    tried: dict[str, int] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Ok):
            _fuzz(result.ok(), api_server, failures, tried)
        else:
            failures.append(f"the schema has an operation schemathesis cannot read: {result.err()}")
    assert len(tried) >= 30, sorted(tried)  # every operation of the schema ran
    log_tail = api_server["log"].read_text(errors="replace")[-4000:]
    assert not failures, "\n\n".join(failures[:20]) + f"\n\n--- server log tail:\n{log_tail}"
