"""Temp names map back to the instance path they were made for."""

from __future__ import annotations

from pathlib import Path

from minipacs import storage


def test_temp_name_round_trips_to_its_final_path() -> None:
    final = Path("/data/1.2/1.2.3/1.2.3.4.dcm")
    tmp = storage._temp_path(final)
    assert tmp.parent == final.parent
    assert tmp.name.startswith(".") and tmp.name.endswith(storage.TMP_SUFFIX)
    assert storage._final_path(tmp) == final


def test_names_that_are_not_temp_names_map_to_nothing() -> None:
    for name in ("1.2.3.dcm", ".1.2.3.dcm.tmp", ".1.2.3.dcm.abc.tmp", ".x.tmp", "..tmp"):
        assert storage._final_path(Path("/data/a/b") / name) is None
