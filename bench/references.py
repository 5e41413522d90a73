"""Reference servers run beside Mini PACS in the same benchmark: DCMTK's
storescp (no index: the ceiling) and Orthanc when it is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import free_port, wait_for_port

STORESCP = "/usr/bin/storescp"
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"


def orthanc_available() -> bool:
    return os.access(ORTHANC, os.X_OK)


@contextmanager
def storescp(directory: Path, ae_title: str = "MINI_PACS") -> Iterator[int]:
    """A DCMTK storescp writing into `directory`; yields its port."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [STORESCP, "-aet", ae_title, "-od", str(directory), str(port)],
        env=os.environ | {"TCP_NODELAY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 10)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def orthanc(workdir: Path, modalities: dict[str, tuple[str, int]] | None = None) -> Iterator[int]:
    """Orthanc with its default SQLite index and synchronous (fsynced) storage,
    answering as MINI_PACS; yields its DICOM port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": "bench",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "DicomAet": "MINI_PACS",
        "DicomPort": port,
        "HttpServerEnabled": False,
        "HttpPort": free_port(),
        "RemoteAccessAllowed": False,
        "StorageCompression": False,
        "SyncStorageArea": True,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowMove": True,
        "DicomAlwaysAllowGet": True,
        "DicomModalities": {
            name: [name, host, dest_port] for name, (host, dest_port) in (modalities or {}).items()
        },
        "Plugins": [],
    }
    (workdir / "orthanc.json").write_text(json.dumps(config))
    log = (workdir / "orthanc.log").open("wb")
    # Orthanc's DICOM stack is DCMTK's, which sets TCP_NODELAY on its sockets
    # only when this variable is set: give Orthanc its best case.
    process = subprocess.Popen(
        [ORTHANC, str(workdir / "orthanc.json")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ | {"TCP_NODELAY": "1"},
    )
    try:
        wait_for_port(port, 30)
        yield port
    finally:
        process.terminate()
        process.wait(30)
        log.close()
