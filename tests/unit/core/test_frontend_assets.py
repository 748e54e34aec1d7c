"""The viewer's files named by the page templates, read from Vite's manifest (spinereview.core.frontend)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import override_settings

from spinereview.core.frontend import COMPARE_MODULE, static_import_closure, viewer_assets

READING_MODULE = "src/app.ts"

# The shape Vite 8 writes: the entry imports the workspace dynamically; the workspace and the
# comparison share a chunk that imports the entry back.
MANIFEST = {
    "src/main.ts": {
        "file": "assets/main-A.js",
        "isEntry": True,
        "css": ["assets/main-A.css"],
        "dynamicImports": [READING_MODULE, COMPARE_MODULE],
    },
    READING_MODULE: {"file": "assets/app-B.js", "isDynamicEntry": True, "imports": ["_seriesPanel-C.js", "src/main.ts"]},
    COMPARE_MODULE: {"file": "assets/compare-D.js", "isDynamicEntry": True, "imports": ["_seriesPanel-C.js", "src/main.ts"]},
    "_seriesPanel-C.js": {"file": "assets/seriesPanel-C.js", "imports": ["src/main.ts", "_vendor-E.js"], "dynamicImports": ["codec.js"]},
    "_vendor-E.js": {"file": "assets/vendor-E.js", "imports": ["_seriesPanel-C.js"]},
    "codec.js": {"file": "assets/codec-F.js", "isDynamicEntry": True},
}


def test_closure_follows_static_imports_once_and_skips_the_entry_and_dynamic_imports() -> None:
    assert static_import_closure(MANIFEST, READING_MODULE) == ["assets/app-B.js", "assets/seriesPanel-C.js", "assets/vendor-E.js"]
    assert static_import_closure(MANIFEST, COMPARE_MODULE) == ["assets/compare-D.js", "assets/seriesPanel-C.js", "assets/vendor-E.js"]


def test_closure_of_a_module_the_build_lacks_is_empty() -> None:
    assert static_import_closure(MANIFEST, "src/gone.ts") == []
    assert static_import_closure({}, READING_MODULE) == []


@pytest.mark.parametrize("manifest", [MANIFEST, {k: v for k, v in MANIFEST.items() if k != COMPARE_MODULE}])
def test_viewer_assets_names_the_workspace_chunks_under_static(tmp_path: Path, manifest: dict[str, object]) -> None:
    (tmp_path / ".vite").mkdir()
    (tmp_path / ".vite" / "manifest.json").write_text(json.dumps(manifest))
    with override_settings(FRONTEND_DIST_DIR=tmp_path, STATIC_URL="/static/"):
        assets = viewer_assets()
    assert assets.script == "/static/viewer/assets/main-A.js"
    assert assets.styles == ("/static/viewer/assets/main-A.css",)
    assert assets.compare_chunks == (
        ("/static/viewer/assets/compare-D.js", "/static/viewer/assets/seriesPanel-C.js", "/static/viewer/assets/vendor-E.js")
        if COMPARE_MODULE in manifest
        else ()
    )


def test_a_build_without_an_entry_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".vite").mkdir()
    (tmp_path / ".vite" / "manifest.json").write_text(json.dumps({"x.js": {"file": "assets/x.js"}}))
    with override_settings(FRONTEND_DIST_DIR=tmp_path), pytest.raises(RuntimeError, match="names no entry point"):
        viewer_assets()
