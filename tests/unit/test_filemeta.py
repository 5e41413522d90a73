"""The hand-built Part 10 header equals pynetdicom's, byte for byte."""

from __future__ import annotations

import pytest
from pydicom.uid import UID
from pynetdicom.dsutils import create_file_meta, encode_file_meta

from minipacs import filemeta

CASES = [
    ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.1"),  # odd, even, odd
    ("1.2.840.10008.5.1.4.1.1.4", "1.2.3.45", "1.2.840.10008.1.2"),  # odd, odd, odd
    ("1.2.840.10008.5.1.4.1.1.12.1", "1." + "2" * 62, "1.2.840.10008.1.2.4.50"),  # 64 chars
    ("1.2.840.10008.5.1.4.1.1.481.1", "2.25.1", "1.2.840.10008.1.2.1.99"),
]


@pytest.mark.parametrize(("sop_class", "sop_instance", "syntax"), CASES)
def test_header_equals_pynetdicoms(sop_class: str, sop_instance: str, syntax: str) -> None:
    expected = (
        b"\x00" * 128
        + b"DICM"
        + encode_file_meta(
            create_file_meta(
                sop_class_uid=UID(sop_class),
                sop_instance_uid=UID(sop_instance),
                transfer_syntax=UID(syntax),
            )
        )
    )
    assert filemeta.part10(sop_class, sop_instance, syntax) == expected


def test_a_uid_that_is_not_ascii_does_not_raise() -> None:
    header = filemeta.part10("1.2.840.10008.5.1.4.1.1.2", "1.2.é", "1.2.840.10008.1.2.1")
    assert b"1.2.?" in header
