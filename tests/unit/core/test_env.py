from pathlib import Path

import pytest

from spinereview.core.env import ConfigurationError, env_bool, env_int, env_list, env_path, env_str


def test_env_str_default_and_required() -> None:
    assert env_str("X", "fallback", environ={}) == "fallback"
    assert env_str("X", "fallback", environ={"X": "set"}) == "set"
    with pytest.raises(ConfigurationError, match="X must be set"):
        env_str("X", environ={})


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False), ("", False)])
def test_env_bool_accepts_common_spellings(raw: str, expected: bool) -> None:
    assert env_bool("DEBUG", not expected, environ={"DEBUG": raw}) is expected


def test_env_bool_error_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", False, environ={"DEBUG": "maybe"})


def test_env_int_validates() -> None:
    assert env_int("N", 3, environ={"N": "7"}) == 7
    with pytest.raises(ConfigurationError, match=r"N='seven' is not an integer"):
        env_int("N", 3, environ={"N": "seven"})
    with pytest.raises(ConfigurationError, match="N=0 must be at least 1"):
        env_int("N", 3, minimum=1, environ={"N": "0"})


def test_env_list_and_path(tmp_path: Path) -> None:
    assert env_list("HOSTS", ["a"], environ={"HOSTS": " x, y ,,z"}) == ["x", "y", "z"]
    assert env_list("HOSTS", ["a"], environ={}) == ["a"]
    assert env_path("DIR", tmp_path, environ={}) == tmp_path
    assert env_path("DIR", Path("/nope"), environ={"DIR": str(tmp_path)}) == tmp_path.resolve()
    with pytest.raises(ConfigurationError, match="DIR is set but empty"):
        env_path("DIR", tmp_path, environ={"DIR": " "})


def test_settings_refuse_a_malformed_variable_at_start_up(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=repo,
        env={"DJANGO_SETTINGS_MODULE": "spinereview.settings", "DEBUG": "perhaps", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "DEBUG='perhaps' is not a boolean" in result.stderr
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=repo,
        env={"DJANGO_SETTINGS_MODULE": "spinereview.settings", "DEBUG": "0", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
