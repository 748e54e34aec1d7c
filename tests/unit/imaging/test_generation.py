"""The import generation that cached DICOMweb searches are keyed on (selectors.instances_generation)."""

from __future__ import annotations

from pathlib import Path

from spinereview.imaging.selectors import GENERATION_FILE, instances_generation
from spinereview.imaging.services import instances_generation_bump


def test_every_bump_gives_a_token_never_seen_before_and_the_first_creates_the_file(tmp_path: Path, settings: object) -> None:
    settings.MEDIA_ROOT = tmp_path  # type: ignore[attr-defined]
    seen = {instances_generation()}  # no file yet
    for _ in range(5):
        instances_generation_bump()
        token = instances_generation()
        assert token not in seen
        seen.add(token)
    stored = (tmp_path / GENERATION_FILE).read_bytes()
    assert len(stored) == 32 and int(stored, 16) >= 0  # rewritten in place: one token, nothing left of the earlier ones
    assert not [p for p in (tmp_path / GENERATION_FILE).parent.iterdir() if p.name != Path(GENERATION_FILE).name]
