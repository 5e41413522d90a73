"""Property-based tests of UID validation: the gate between wire values and
paths on the volume."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from minipacs.storage import instance_path
from minipacs.uids import InvalidUID, check_uid, is_valid_uid

BOUNDED = settings(max_examples=300, deadline=200)

component = st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,9}", fullmatch=True))
grammatical = st.lists(component, min_size=1, max_size=12).map(".".join)
uid_like = st.text(alphabet="0123456789./\\ \x00abcXYZ-_", max_size=80)


def reference_is_uid(value: str) -> bool:
    """PS3.5 9.1 spelled out differently from the implementation's regex."""
    if not 1 <= len(value) <= 64:
        return False
    for part in value.split("."):
        if not part or not part.isascii() or not part.isdigit():
            return False
        if len(part) > 1 and part[0] == "0":
            return False
    return True


@BOUNDED
@given(grammatical)
def test_grammatical_uids_are_valid_up_to_64_characters(uid: str) -> None:
    assert is_valid_uid(uid) == (len(uid) <= 64)


@BOUNDED
@given(st.one_of(uid_like, st.text(max_size=80)))
def test_validation_agrees_with_the_standard(value: str) -> None:
    assert is_valid_uid(value) == reference_is_uid(value)


@BOUNDED
@given(st.one_of(uid_like, st.text(max_size=80), grammatical))
def test_check_uid_returns_a_uid_or_raises(value: str) -> None:
    try:
        checked = check_uid(value, "SOPInstanceUID")
    except InvalidUID as exc:
        assert "SOPInstanceUID" in str(exc)
    else:
        assert is_valid_uid(checked)
        assert checked == value.rstrip("\x00 ")


@BOUNDED
@given(uid_like, uid_like, uid_like)
def test_instance_paths_never_leave_the_storage_root(study: str, series: str, sop: str) -> None:
    root = Path("/srv/pacs")
    try:
        path = instance_path(root, study, series, sop)
    except InvalidUID:
        return
    assert path.resolve().parent.parent.parent == root
    assert ".." not in path.parts
    assert path.name.endswith(".dcm")
