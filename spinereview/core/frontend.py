"""The built viewer's entry files, read from Vite's manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings

COMPARE_MODULE = "src/compare/readerCompareApp.ts"
"""The reader-vs-reader comparison page's module, imported dynamically by the entry."""


@dataclass(frozen=True)
class ViewerAssets:
    script: str
    styles: tuple[str, ...]
    compare_chunks: tuple[str, ...] = ()
    """The reader-vs-reader comparison's chunks (its module and every chunk it imports statically): the
    page has the browser fetch and compile them (modulepreload) while the entry script is still on its way.
    The reading page names none of the workspace's: their compiling held the main thread while the entry
    drew its previews (bench/viewer_load.py: cold first image ~80 ms later, the series no sooner); the
    entry asks for them once the previews are drawn (src/main.ts)."""


def viewer_assets() -> ViewerAssets:
    manifest_path = settings.FRONTEND_DIST_DIR / ".vite" / "manifest.json"
    try:
        modified_ns = manifest_path.stat().st_mtime_ns
    except FileNotFoundError:
        raise RuntimeError(f"The viewer is not built ({manifest_path} is missing): run `./run setup`") from None
    return _assets_from_manifest(str(manifest_path), modified_ns)


def static_import_closure(manifest: dict[str, Any], module: str) -> list[str]:
    """The files of `module`'s chunk and of every chunk it imports statically, transitively, in
    import order, without entry chunks (the page loads those itself); [] if the build has no such module."""
    files: list[str] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        item = manifest.get(key)
        if key in seen or not isinstance(item, dict) or item.get("isEntry"):
            return
        seen.add(key)
        files.append(item["file"])
        for imported in item.get("imports", []):
            visit(imported)

    visit(module)
    return files


@lru_cache(maxsize=4)
def _assets_from_manifest(manifest_path: str, modified_ns: int) -> ViewerAssets:
    """Parsed once per build: the cache key includes the manifest's modification time."""
    manifest = json.loads(Path(manifest_path).read_text())
    entry = next((item for item in manifest.values() if item.get("isEntry")), None)
    if entry is None:
        raise RuntimeError(f"{manifest_path} names no entry point")
    prefix = f"{settings.STATIC_URL}viewer/"
    return ViewerAssets(
        script=prefix + entry["file"],
        styles=tuple(prefix + css for css in entry.get("css", [])),
        compare_chunks=tuple(prefix + f for f in static_import_closure(manifest, COMPARE_MODULE)),
    )
