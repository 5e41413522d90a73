"""A DCMTK storescp as a C-MOVE destination, and a study stored in the PACS."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.helpers import (
    DCMTK_BIN,
    Pacs,
    dataset_bytes,
    dcmtk,
    free_port,
    make_dataset,
    wait_until,
    write_dataset,
)


@dataclass
class StoreSCP:
    ae_title: str
    port: int
    out_dir: Path
    popen: subprocess.Popen

    def received(self) -> dict[str, Path]:
        """SOP Instance UID -> file, for every complete file written."""
        files = {}
        for path in self.out_dir.iterdir():
            if path.is_file() and not path.name.startswith("."):
                try:
                    files[str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
                except Exception:  # still being written
                    continue
        return files

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def start_storescp(out_dir: Path, ae_title: str = "DEST_SCP", port: int | None = None) -> StoreSCP:
    """storescp accepting every transfer syntax, writing files bit-preserving."""
    port = port or free_port()
    out_dir.mkdir(parents=True, exist_ok=True)
    log = (out_dir.parent / f"storescp-{port}.log").open("wb")
    popen = subprocess.Popen(
        [
            str(DCMTK_BIN / "storescp"),
            "-aet",
            ae_title,
            "+xa",
            "+B",
            "-od",
            str(out_dir),
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()

    def listening() -> bool:
        if popen.poll() is not None:
            raise AssertionError(f"storescp exited {popen.returncode}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, 10, "storescp to listen")
    return StoreSCP(ae_title, port, out_dir, popen)


@dataclass
class Study:
    patient_id: str
    study_uid: str
    series_uids: list[str]
    files: dict[str, Path]  # SOP Instance UID -> the PACS's file


def store_study(
    pacs: Pacs, tmp: Path, patient_id: str, series: int = 2, per_series: int = 3
) -> Study:
    """Generate a study, C-STORE it into the PACS with storescu."""
    study_uid = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    files = {}
    for s, series_uid in enumerate(series_uids, 1):
        for n in range(1, per_series + 1):
            ds = make_dataset(
                patient_id=patient_id,
                study_uid=study_uid,
                series_uid=series_uid,
                series_number=s,
                instance_number=n,
            )
            files[str(ds.SOPInstanceUID)] = write_dataset(ds, tmp / "sent")
    result = dcmtk(
        "storescu", "-aec", pacs.ae_title, pacs.host, str(pacs.port), *map(str, files.values())
    )
    assert result.returncode == 0, result.stderr
    return Study(patient_id, study_uid, series_uids, archived(pacs, list(files)))


def archived(pacs: Pacs, sop_uids: list[str]) -> dict[str, Path]:
    """SOP Instance UID -> the file the PACS holds for it, in the order given
    (callers rely on it: series by series)."""
    rows = dict(
        pacs.rows(
            "SELECT sop_instance_uid, file_path FROM instances WHERE sop_instance_uid = ANY(%s)",
            (sop_uids,),
        )
    )
    assert len(rows) == len(sop_uids)
    return {uid: pacs.storage_dir / rows[uid] for uid in sop_uids}


def assert_delivered(dest: StoreSCP, files: dict[str, Path], timeout: float = 30) -> None:
    """Every file arrived with its dataset byte-identical to what was stored."""

    def all_there() -> dict[str, Path] | None:
        got = dest.received()
        return got if set(files) <= set(got) else None

    received = wait_until(
        all_there,
        timeout,
        f"{len(files)} instances at {dest.ae_title}",
    )
    for uid, path in files.items():
        assert dataset_bytes(received[uid]) == dataset_bytes(path), uid


def settle(seconds: float = 0.5) -> None:
    """Let a process that was told to stop do so (not used for synchronisation)."""
    time.sleep(seconds)


class CountingSCP:
    """A pynetdicom Storage SCP in the test process that counts every
    C-STORE it receives (to see duplicates) and can be slowed down, answer
    a failure to every `fail_every`-th instance, or abort the association on
    receiving the `abort_at`-th."""

    def __init__(
        self,
        ae_title: str = "COUNT_SCP",
        delay: float = 0.0,
        fail_every: int = 0,
        abort_at: int = 0,
    ) -> None:
        import threading
        from collections import Counter

        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt

        self.ae_title = ae_title
        self.delay = delay
        self.received: Counter[str] = Counter()
        self.failed: list[str] = []
        self.lock = threading.Lock()
        self.port = free_port()
        ae = AE(ae_title=ae_title)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)

        def on_store(event) -> int:
            if self.delay:
                time.sleep(self.delay)
            uid = str(event.request.AffectedSOPInstanceUID)
            with self.lock:
                self.received[uid] += 1
                number = sum(self.received.values())
                if abort_at and number == abort_at:
                    event.assoc.abort()
                    return 0xA700
                if fail_every and number % fail_every == 0:
                    self.failed.append(uid)
                    return 0xA700  # Out of resources
            return 0

        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
        )

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def stop(self) -> None:
        self.server.shutdown()


class Abandon(Exception):
    """Raised by an `on_response` callback: abort the association there."""


def move_with_pynetdicom(
    pacs: Pacs, dest_ae: str, identifier, on_response=None, timeout: float = 60
) -> list[tuple[int, object]]:
    """C-MOVE (Study Root) reading every response; `on_response(assoc, status)`
    is called for each one (e.g. to send a C-CANCEL). Returns (status, rsp)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

    ae = AE(ae_title="PYMOVESCU")
    ae.add_requested_context(MOVE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    responses = []
    try:
        for status, ident in assoc.send_c_move(identifier, dest_ae, MOVE):
            assert "Status" in status, "no response from the PACS"
            responses.append((int(status.Status), status, ident))
            if on_response is not None:
                on_response(assoc, status)
    except Abandon:
        assoc.abort()
    finally:
        if assoc.is_established:
            assoc.release()
    return responses
