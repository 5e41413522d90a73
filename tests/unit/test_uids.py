import pytest

from minipacs.uids import InvalidUID, check_uid, is_valid_uid


@pytest.mark.parametrize("uid", ["1.2.3", "0", "1.2.840.10008.1.2.1", "2.25." + "1" * 58])
def test_valid_uids(uid: str) -> None:
    assert is_valid_uid(uid)


@pytest.mark.parametrize(
    "uid",
    [
        "",
        "../..",
        "1.2.3/4",
        "1..2",
        ".1.2",
        "1.2.",
        "1.02",
        "1.2.a",
        "1.2.3 ",
        "2.25." + "1" * 61,
        "1.2\x003",
        "/etc/passwd",
    ],
)
def test_invalid_uids(uid: str) -> None:
    assert not is_valid_uid(uid)


def test_check_uid_strips_padding_and_names_the_attribute() -> None:
    assert check_uid("1.2.3\x00", "StudyInstanceUID") == "1.2.3"
    with pytest.raises(InvalidUID, match="SeriesInstanceUID '../x'"):
        check_uid("../x", "SeriesInstanceUID")
    with pytest.raises(InvalidUID):
        check_uid(None, "SOPInstanceUID")
