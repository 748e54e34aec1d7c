from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def phantom_cases(phantom_dir: Path) -> list[Path]:
    return sorted(p for p in phantom_dir.iterdir() if (p / "dicom").is_dir())
