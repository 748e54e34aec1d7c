"""The built viewer's entry files, read from Vite's manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings


@dataclass(frozen=True)
class ViewerAssets:
    script: str
    styles: tuple[str, ...]


@lru_cache(maxsize=1)
def viewer_assets() -> ViewerAssets:
    manifest_path = settings.FRONTEND_DIST_DIR / ".vite" / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise RuntimeError(f"The viewer is not built ({manifest_path} is missing): run `./run build`") from None
    entry = next((item for item in manifest.values() if item.get("isEntry")), None)
    if entry is None:
        raise RuntimeError(f"{manifest_path} names no entry point")
    prefix = f"{settings.STATIC_URL}viewer/"
    return ViewerAssets(script=prefix + entry["file"], styles=tuple(prefix + css for css in entry.get("css", [])))
