"""Access control and transport security: the calling-AE allow-list and DICOM
TLS (with client-certificate verification) on the real listener."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.e2e.fault_helpers import indexed, store
from tests.helpers import (
    Pacs,
    c_echo,
    dcmtk,
    free_port,
    make_dataset,
    start_process,
    wait_until,
)

REJECTED_PERMANENT = 0x01
SERVICE_USER = 0x01
CALLING_AE_NOT_RECOGNISED = 0x03


def test_allow_list_rejects_other_calling_aes(start_listener: Callable[..., Pacs]) -> None:
    pacs = start_listener(PACS_ALLOWED_AES="PROBE,MODALITY1, FAULTS")
    allowed = dcmtk(
        "echoscu", "-aet", "MODALITY1", "-aec", pacs.ae_title, pacs.host, str(pacs.port)
    )
    assert allowed.returncode == 0, allowed.stderr
    refused = dcmtk("echoscu", "-aet", "INTRUDER", "-aec", pacs.ae_title, pacs.host, str(pacs.port))
    assert refused.returncode != 0
    assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr

    ae = AE(ae_title="INTRUDER")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_rejected
    rejection = assoc.acceptor.primitive
    assert (rejection.result, rejection.result_source, rejection.diagnostic) == (
        REJECTED_PERMANENT,
        SERVICE_USER,
        CALLING_AE_NOT_RECOGNISED,
    )
    # Titles are compared exactly (case-sensitive), like the called AE title.
    lower = dcmtk("echoscu", "-aet", "modality1", "-aec", pacs.ae_title, pacs.host, str(pacs.port))
    assert lower.returncode != 0
    ds = make_dataset(patient_id="ALLOWED")
    assert store(pacs, [ds], calling="FAULTS")[0].Status == 0
    assert indexed(pacs, ds.SOPInstanceUID)


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path  # signed by another CA
    rogue_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(cwd: Path, name: str, ca: str, san: str | None = None) -> None:
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=cwd,
    )  # fmt: skip
    ext = cwd / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", ext.name,
        cwd=cwd,
    )  # fmt: skip


def _make_ca(cwd: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "1", "-subj", f"/CN={name}",
        cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A throwaway CA with a server and a client certificate, and a client
    certificate from a second CA the listener does not trust."""
    d = tmp_path_factory.mktemp("pki")
    _make_ca(d, "ca")
    _make_ca(d, "rogue_ca")
    _issue(d, "server", "ca", san="DNS:localhost,IP:127.0.0.1")
    _issue(d, "client", "ca")
    _issue(d, "rogue", "rogue_ca")
    return Certs(
        d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key",
        d / "rogue.crt", d / "rogue.key",
    )  # fmt: skip


def _client_context(certs: Certs, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certs.ca))
    if cert and key:
        context.load_cert_chain(str(cert), str(key))
    return context


def _tls_echo(pacs: Pacs, context: ssl.SSLContext) -> bool:
    ae = AE(ae_title="TLSPROBE")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    assoc = ae.associate(
        pacs.host, pacs.port, ae_title=pacs.ae_title, tls_args=(context, "localhost")
    )
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and status.Status == 0


@pytest.fixture(scope="module")
def tls_pacs(
    certs: Certs, base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pacs]:
    """A listener with TLS and client-certificate verification. Started here
    rather than with `start_listener`, whose readiness probe speaks plain TCP."""
    workdir = tmp_path_factory.mktemp("tls_listener")
    port = free_port()
    env = base_env | {
        "PACS_PORT": str(port),
        "PACS_STORAGE_DIR": str(workdir / "storage"),
        "PACS_TLS_CERT": str(certs.server_cert),
        "PACS_TLS_KEY": str(certs.server_key),
        "PACS_TLS_CA": str(certs.ca),
        "PACS_NETWORK_TIMEOUT": "5",
    }
    process = start_process(["listener"], env, workdir / "listener.log")
    pacs = Pacs(
        "127.0.0.1", port, env["PACS_AE_TITLE"], workdir / "storage", env["DATABASE_URL"], env,
        process,
    )  # fmt: skip
    context = _client_context(certs, certs.client_cert, certs.client_key)

    def ready() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"listener exited:\n{process.log()}")
        return _tls_echo(pacs, context)

    try:
        wait_until(ready, 30, "the TLS listener to answer C-ECHO", interval=0.3)
        yield pacs
    finally:
        assert process.stop() == 0


def test_store_over_tls_with_a_client_certificate(tls_pacs: Pacs, certs: Certs) -> None:
    context = _client_context(certs, certs.client_cert, certs.client_key)
    ae = AE(ae_title="TLSMOD")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate(
        tls_pacs.host, tls_pacs.port, ae_title=tls_pacs.ae_title, tls_args=(context, "localhost")
    )
    assert assoc.is_established
    ds = make_dataset(patient_id="TLS001")
    status = assoc.send_c_store(ds)
    assoc.release()
    assert status.Status == 0
    assert indexed(tls_pacs, ds.SOPInstanceUID)
    assert tls_pacs.stored_file(ds).is_file()
    assert "(TLS)" in tls_pacs.process.log()


def test_dcmtk_echoscu_over_tls(tls_pacs: Pacs, certs: Certs) -> None:
    result = dcmtk(
        "echoscu", "-v", "+tls", str(certs.client_key), str(certs.client_cert),
        "+cf", str(certs.ca), "-aec", tls_pacs.ae_title, "localhost", str(tls_pacs.port),
        timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Received Echo Response (Success)" in result.stdout + result.stderr


def test_plain_tcp_client_fails_cleanly_and_tls_keeps_serving(tls_pacs: Pacs, certs: Certs) -> None:
    assert not c_echo(tls_pacs.host, tls_pacs.port, tls_pacs.ae_title, timeout=5)
    plain = dcmtk("echoscu", "-aec", tls_pacs.ae_title, tls_pacs.host, str(tls_pacs.port))
    assert plain.returncode != 0
    assert tls_pacs.process.popen.poll() is None
    assert _tls_echo(tls_pacs, _client_context(certs, certs.client_cert, certs.client_key))


def test_clients_without_a_trusted_certificate_are_refused(tls_pacs: Pacs, certs: Certs) -> None:
    assert not _tls_echo(tls_pacs, _client_context(certs, None, None))
    assert not _tls_echo(tls_pacs, _client_context(certs, certs.rogue_cert, certs.rogue_key))
    assert _tls_echo(tls_pacs, _client_context(certs, certs.client_cert, certs.client_key))


def test_a_silent_peer_does_not_stall_the_tls_handshakes(tls_pacs: Pacs, certs: Certs) -> None:
    """pynetdicom does the TLS handshake in its accept loop; a peer that
    connects and says nothing must not keep everybody else out."""
    context = _client_context(certs, certs.client_cert, certs.client_key)
    with socket.create_connection((tls_pacs.host, tls_pacs.port), timeout=5):
        assert _tls_echo(tls_pacs, context)


def test_healthcheck_speaks_tls_to_a_tls_listener(tls_pacs: Pacs) -> None:
    assert tls_pacs.minipacs("healthcheck").returncode == 0


def test_healthcheck_passes_an_allow_list_that_names_it(
    start_listener: Callable[..., Pacs],
) -> None:
    """As documented: HEALTHCHECK must be in PACS_ALLOWED_AES."""
    listed = start_listener(PACS_ALLOWED_AES="PROBE,HEALTHCHECK")
    assert listed.minipacs("healthcheck").returncode == 0
    unlisted = start_listener(PACS_ALLOWED_AES="PROBE")
    assert unlisted.minipacs("healthcheck").returncode == 1
