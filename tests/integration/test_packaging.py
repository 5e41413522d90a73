"""The compose file and the Dockerfile, checked with the tools the README names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import VENV_BIN

ROOT = Path(__file__).resolve().parents[2]


def compose_config(*files: str) -> subprocess.CompletedProcess:
    args = ["docker-compose"]
    for name in files:
        args += ["-f", str(ROOT / name)]
    return subprocess.run(
        [*args, "config", "-q"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_docker_compose_config_accepts_the_compose_files() -> None:
    assert shutil.which("docker-compose"), "make test installs docker-compose"
    for files in (("docker-compose.yml",), ("docker-compose.yml", "docker-compose.test.yml")):
        result = compose_config(*files)
        assert result.returncode == 0, result.stderr


def test_compose_has_the_contracted_services_health_checks_and_order() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "listener", "sender"}
    for name in ("postgres", "redis", "listener", "sender"):
        assert "healthcheck" in services[name], name
    assert services["listener"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["listener"]["command"] == ["minipacs", "listener"]
    assert services["sender"]["command"] == ["minipacs", "sender"]
    assert "dicom:/data" in services["listener"]["volumes"]
    assert "dicom:/data" in services["sender"]["volumes"]


def test_hadolint_accepts_the_dockerfile() -> None:
    result = subprocess.run(
        [
            str(VENV_BIN / "hadolint"),
            "--failure-threshold",
            "warning",
            str(ROOT / "services" / "Dockerfile"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_the_way_make_test_does() -> None:
    dockerfile = (ROOT / "services" / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install -e \.(\s|$)", dockerfile)
    assert "pip install -q -e '.[test]'" in makefile
    assert "pip install -e '.[test]'" in dockerfile


@pytest.mark.parametrize("variable", ["PACS_AE_TITLE", "PACS_PORT", "PACS_STORAGE_DIR"])
def test_env_example_documents_the_contract_variables(variable: str) -> None:
    assert re.search(rf"^{variable}=", (ROOT / ".env.example").read_text(), re.M)
