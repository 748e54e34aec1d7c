"""What can be checked of docker/ without a Docker engine: the compose file's structure, its
variables against .env.example, the Dockerfiles' references, and the containers' own commands run
outside containers (web: migrate, collectstatic, gunicorn --check-config, then serving with the
health check; workers: the Celery worker commands, answering the health check's ping)."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
COMPOSE_TEXT = (DOCKER / "compose.yaml").read_text()
APP_SERVICES = ("web", "worker-cpu", "worker-gpu")
STRONG_KEY = "docker-config-test-key-6f1c0b8e6b1f4f4e9a552a1f0e0c9d11"


def _env_example() -> dict[str, str]:
    values = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _variables(text: str) -> set[str]:
    # ${VAR}, ${VAR:-default}, ${VAR:?message}; "$$" escapes a dollar for the container's shell.
    return set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))


def test_compose_has_every_service_with_health_checks_and_volumes() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "redis", *APP_SERVICES}
    declared_volumes = set(COMPOSE["volumes"])
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no health check"
        assert check["test"][0] in {"CMD", "CMD-SHELL"} and len(check["test"]) >= 2, name
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck.{key}"
        assert service.get("restart") == "unless-stopped", name
        assert service.get("volumes"), f"{name} keeps no data in a volume"
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            if not source.startswith(("$", ".", "/")):
                assert source in declared_volumes, f"{name}: volume {source} is not declared"
    for name in APP_SERVICES:
        mounts = {volume.split(":")[0] for volume in services[name]["volumes"]}
        assert {"media", "models"} <= mounts, f"{name} must share the media and model volumes"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_every_setting_comes_from_a_variable_and_is_documented() -> None:
    example = _env_example()
    used = _variables(COMPOSE_TEXT)
    assert used == set(example), (
        f"in compose but not .env.example: {sorted(used - set(example))}; the reverse: {sorted(set(example) - used)}"
    )
    for name in APP_SERVICES:
        environment = COMPOSE["services"][name]["environment"]
        for key, value in environment.items():
            if key == "OPENBLAS_NUM_THREADS":
                continue
            assert re.fullmatch(r"\$\{[A-Z_0-9]+(:[-?][^}]*)?\}", str(value)), f"{name}: {key}={value!r} is not taken from the environment"
    for secret in ("SECRET_KEY", "POSTGRES_PASSWORD", "DATABASE_URL"):
        assert re.search(rf"\$\{{{secret}:\?", COMPOSE_TEXT), f"{secret} must be required (no default)"
        assert example[secret] in {"", "postgres://spinereview:CHANGE-ME@postgres:5432/spinereview"}, (
            f"{secret} has a real value in .env.example"
        )


def _dockerfile_cmds(path: Path) -> dict[str, list[str]]:
    """CMD of each stage (``FROM ... AS name``; an unnamed single stage is "default")."""
    commands: dict[str, list[str]] = {}
    stage = "default"
    for line in path.read_text().splitlines():
        if match := re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line):
            stage = match.group(1) or "default"
        elif line.startswith("CMD "):
            commands[stage] = json.loads(line[4:])
    return commands


def test_dockerfiles_copy_what_exists_and_install_the_backup_tools() -> None:
    for path in (DOCKER / "Dockerfile", DOCKER / "Dockerfile.worker-gpu"):
        text = path.read_text()
        stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.MULTILINE))
        for match in re.finditer(r"^COPY\s+(?:--chown=\S+\s+)?(?:--from=(\S+)\s+)?(\S+)\s+\S+$", text, re.MULTILINE):
            if match.group(1):
                assert match.group(1) in stages, f"{path.name}: COPY --from={match.group(1)}"
            elif match.group(2) != ".":
                assert (REPO / match.group(2)).exists(), f"{path.name}: COPY {match.group(2)}"
    assert "postgresql-client" in (DOCKER / "Dockerfile").read_text()
    pg_major = re.search(r"image: postgres:(\d+)", COMPOSE_TEXT)
    assert pg_major is not None and pg_major.group(1) == "15", "pg_dump in the image (bookworm: 15) must not be older than the server"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _container_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The app containers' environment: .env.example's values with the blanks filled in, pointed at this machine."""
    env = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG"}}
    env.update(_env_example())
    env.update(
        SECRET_KEY=STRONG_KEY,
        POSTGRES_PASSWORD="unused-here",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        SPINEREVIEW_VAR_DIR=str(tmp_path / "var"),
        SPINEREVIEW_MEDIA_ROOT=str(tmp_path / "media"),
        SPINEREVIEW_MODEL_ROOT=str(tmp_path / "models"),
        CACHE_URL="locmem://",
        PYTHONPATH=str(REPO),
    )
    env.update(overrides)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def test_web_entrypoint_runs_outside_a_container(tmp_path: Path) -> None:
    (cmd,) = [c for stage, c in _dockerfile_cmds(DOCKER / "Dockerfile").items() if stage == "web"]
    assert cmd[:2] == ["sh", "-c"]
    steps = [shlex.split(step.strip().removeprefix("exec ")) for step in cmd[2].split("&&")]
    assert [step[:3] for step in steps[:2]] == [["python", "manage.py", "migrate"], ["python", "manage.py", "collectstatic"]]
    assert steps[2][0] == "gunicorn"
    port = _free_port()
    env = _container_env(tmp_path, ALLOWED_HOSTS="spinereview.example.org,localhost", PORT=str(port))
    for step in steps[:2]:
        result = subprocess.run([sys.executable, *step[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, f"{step}: {result.stderr[-2000:]}"
    assert (tmp_path / "var" / "static" / "site.css").is_file()
    gunicorn = [sys.executable, "-m", "gunicorn", *[f"127.0.0.1:{port}" if arg == "0.0.0.0:8000" else arg for arg in steps[2][1:]]]
    checked = subprocess.run([*gunicorn, "--check-config"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    server = subprocess.Popen([*gunicorn, "--workers", "1"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            health = subprocess.run([sys.executable, str(DOCKER / "healthcheck.py")], env=env, capture_output=True, text=True, timeout=30)
            # The broker (redis://redis:6379) does not exist here: the check must say so and fail...
            if "healthz" in health.stdout:
                break
            assert time.monotonic() < deadline, health.stderr
            time.sleep(0.5)
        assert health.returncode == 1 and '"database": "ok"' in health.stdout and '"broker": "error' in health.stdout, health.stdout
    finally:
        server.terminate()
        server.wait(timeout=20)
    # ...and with the server down, it fails too.
    down = subprocess.run([sys.executable, str(DOCKER / "healthcheck.py")], env=env, capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "unreachable" in down.stderr


@pytest.mark.integration
def test_worker_entrypoints_start_and_answer_the_health_check(tmp_path: Path) -> None:
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        pytest.skip("needs the test Redis (CELERY_BROKER_URL=redis://...), as the integration tests do")
    commands = {
        "worker-cpu": _dockerfile_cmds(DOCKER / "Dockerfile")["worker-cpu"],
        "worker-gpu": _dockerfile_cmds(DOCKER / "Dockerfile.worker-gpu")["default"],
    }
    hostname = socket.gethostname()
    env = _container_env(tmp_path, CELERY_BROKER_URL=broker, HOSTNAME=hostname, OPENBLAS_NUM_THREADS="1")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    assert migrate.returncode == 0, migrate.stderr
    # Both workers at once, as compose runs them; each must answer its own health check.
    workers = {}
    for name, cmd in commands.items():
        assert cmd[:3] == ["celery", "-A", "spinereview"], name
        assert (name, cmd[cmd.index("-Q") + 1]) in {("worker-cpu", "cpu"), ("worker-gpu", "gpu")}
        workers[name] = subprocess.Popen(
            [sys.executable, "-m", *cmd, "--concurrency", "1", "--without-mingle"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        for name, cmd in commands.items():
            node = cmd[cmd.index("-n") + 1].split("@")[0]
            healthcheck: Any = COMPOSE["services"][name]["healthcheck"]["test"]
            assert healthcheck[0] == "CMD-SHELL"
            shell = healthcheck[1].replace("$$", "$").replace("celery ", f"{sys.executable} -m celery ", 1)
            deadline = time.monotonic() + 90
            while True:
                ping = subprocess.run(["sh", "-c", shell], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
                if ping.returncode == 0:
                    break
                worker = workers[name]
                assert worker.poll() is None, f"{name} exited: {worker.stdout.read() if worker.stdout else ''}"
                assert time.monotonic() < deadline, ping.stdout + ping.stderr
                time.sleep(1)
            assert f"{node}@{hostname}: OK" in ping.stdout
    finally:
        for worker in workers.values():
            worker.terminate()
        for worker in workers.values():
            worker.wait(timeout=30)
