"""The built viewer's entry files, read from Vite's manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class ViewerAssets:
    script: str
    styles: tuple[str, ...]


def viewer_assets() -> ViewerAssets:
    manifest_path = settings.FRONTEND_DIST_DIR / ".vite" / "manifest.json"
    try:
        modified_ns = manifest_path.stat().st_mtime_ns
    except FileNotFoundError:
        raise RuntimeError(f"The viewer is not built ({manifest_path} is missing): run `./run setup`") from None
    return _assets_from_manifest(str(manifest_path), modified_ns)


@lru_cache(maxsize=4)
def _assets_from_manifest(manifest_path: str, modified_ns: int) -> ViewerAssets:
    """Parsed once per build: the cache key includes the manifest's modification time."""
    manifest = json.loads(Path(manifest_path).read_text())
    entry = next((item for item in manifest.values() if item.get("isEntry")), None)
    if entry is None:
        raise RuntimeError(f"{manifest_path} names no entry point")
    prefix = f"{settings.STATIC_URL}viewer/"
    return ViewerAssets(script=prefix + entry["file"], styles=tuple(prefix + css for css in entry.get("css", [])))
