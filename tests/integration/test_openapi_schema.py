"""The viewer's TypeScript types are generated from frontend/src/api/schema.json (frontend's vitest checks
the types against that file); this checks the file against the schema the server serves now, so an
API change cannot leave the viewer's types behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.integration

COMMITTED = Path(__file__).resolve().parents[2] / "frontend" / "src" / "api" / "schema.json"


def test_committed_openapi_schema_matches_the_server(tmp_path: Path) -> None:
    live = tmp_path / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(live))
    assert json.loads(live.read_text()) == json.loads(COMMITTED.read_text()), (
        "The API changed: run `cd frontend && npm run schema && npm run gen:api` and commit both files"
    )
