"""A bounded fuzz run of the store path (header parsing, index record,
durable write, index upsert) over mutated real files from pydicom's test set,
against a real PostgreSQL: every input yields a StoreResult, never an
exception, and a Success is always a file plus its row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.data import get_testdata_file

from minipacs.archive import Archive, StoreRequest, StoreResult, store_instance
from minipacs.db import create_pool
from minipacs.status import Status

SOURCES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "reportsi.dcm",
    "UN_sequence.dcm",
    "badVR.dcm",
    "empty_charset_LEI.dcm",
    "nested_priv_SQ.dcm",
    "no_meta.dcm",
    "image_dfl.dcm",
    "GDCMJ2K_TextGBR.dcm",
]


def _load() -> dict[str, tuple[bytes, str, str]]:
    """File bytes plus the SOP Class/Instance UIDs a C-STORE request would carry."""
    loaded = {}
    for name in SOURCES:
        path = get_testdata_file(name)
        if path is None:
            continue
        data = Path(path).read_bytes()
        ds = dcmread(path, force=True, stop_before_pixels=True)
        loaded[name] = (
            data,
            str(ds.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.7")),
            str(ds.get("SOPInstanceUID", "1.2.3.4")),
        )
    return loaded


FILES = _load()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str, str]:
    name = draw(st.sampled_from(sorted(FILES)))
    data, sop_class, sop_uid = FILES[name]
    buffer = bytearray(data)
    header_end = min(len(buffer), 4096)  # most structure lives up front
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, min(len(buffer), header_end) - 1)))
        if kind == "flip" and buffer:
            buffer[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"UN", b"SQ"]))
            buffer[at : at + len(chunk)] = chunk
        elif kind == "insert":
            buffer[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del buffer[at : at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del buffer[at:]
    return bytes(buffer), sop_class, sop_uid


def _request_uids(data: bytes, sop_class: str, sop_uid: str) -> tuple[str, str]:
    """What a peer would put in the request: the dataset's UIDs when they can
    still be read, so inputs reach past the mismatch checks."""
    try:
        from io import BytesIO

        ds = dcmread(BytesIO(data), force=True, stop_before_pixels=True)
        return str(ds.get("SOPClassUID", sop_class)), str(ds.get("SOPInstanceUID", sop_uid))
    except Exception:
        return sop_class, sop_uid


@pytest.fixture(scope="module")
def archive(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    pool = create_pool(database_url, 2, 5, "fuzz")
    try:
        yield Archive(pool, tmp_path_factory.mktemp("fuzz_storage"), "overwrite")
    finally:
        pool.close()


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(mutated())
def test_mutated_files_only_ever_produce_a_store_result(
    archive: Archive, case: tuple[bytes, str, str]
) -> None:
    data, sop_class, sop_uid = case
    request_class, request_uid = _request_uids(data, sop_class, sop_uid)
    result = store_instance(
        archive,
        StoreRequest(
            part10=data,
            sop_class_uid=request_class,
            sop_instance_uid=request_uid,
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            calling_ae="FUZZ",
        ),
    )
    assert isinstance(result, StoreResult)
    event(result.status.name)
    assert not list(archive.storage_dir.glob("*/*/.*.tmp")), "temp file left behind"
    if result.status == Status.SUCCESS:
        with archive.pool.connection() as conn:
            row = conn.execute(
                "SELECT file_path FROM instances WHERE sop_instance_uid = %s", (request_uid,)
            ).fetchone()
        assert row is not None
        assert (archive.storage_dir / row[0]).is_file()
