"""C-MOVE as a user does it: movescu to a storescp, through the sender worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.destination import StoreSCP, assert_delivered, start_storescp, store_study
from tests.helpers import Pacs, Process, dcmtk


@pytest.fixture()
def dest(tmp_path: Path) -> StoreSCP:
    scp = start_storescp(tmp_path / "received")
    yield scp
    scp.stop()


@pytest.fixture(scope="module")
def sender(pacs: Pacs, start_sender: Callable[..., Process]) -> Process:
    return start_sender(pacs)


def movescu(pacs: Pacs, dest_ae: str, *keys: str, model: str = "-S", timeout: float = 90):
    args = ["-v", "-aec", pacs.ae_title, "-aem", dest_ae, model]
    for key in keys:
        args += ["-k", key]
    return dcmtk("movescu", *args, pacs.host, str(pacs.port), timeout=timeout)


def test_seed_move_verbatim(pacs: Pacs, sender: Process, dest: StoreSCP, tmp_path: Path) -> None:
    study = store_study(pacs, tmp_path, "MOVE001")
    assert pacs.minipacs("ae", "add", "DEST_SCP", "127.0.0.1", str(dest.port)).returncode == 0
    result = dcmtk(
        "movescu", "-v", "-aec", pacs.ae_title, "-aem", "DEST_SCP",
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study.study_uid}",
        pacs.host, str(pacs.port), timeout=90,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Received Final Move Response (Success)" in output, output
    assert_delivered(dest, study.files)
