"""Property-based tests: whatever a C-FIND or MWL identifier holds, its values
only ever become bind parameters. The SQL text built for a value is the SQL
built for a harmless value of the same shape (same wildcards, same PN
component groups), so no character of the value can reach the statement."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from minipacs.index.attributes import ATTRIBUTES, PATIENT_ROOT
from minipacs.index.matching import IdentifierError, MatchOptions, compile_find
from minipacs.worklist.matching import SPS_KEYS, TOP_KEYS, QueryError, build_query

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on odd values

BOUNDED = settings(max_examples=150, deadline=500)

HOSTILE = st.sampled_from(
    ["'", "''", '"', ";", "--", "%", "_", "\\", "/*", "*/", "$1", "%s", "%(x)s", "{}", "ü", "山"]
)
values = st.one_of(
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20),
    st.lists(
        st.one_of(HOSTILE, st.sampled_from(["a", "1", "*", "?", "=", "-", " "])), max_size=8
    ).map("".join),
)
TEXT_VRS = {"LO", "SH", "CS", "PN", "AE", "UI"}
DIGITS = re.compile(r"[0-9.]*")


def twin(value: str) -> str:
    """The same shape with every other character made harmless."""
    return "".join(c if c in "*?=\\" or c.isspace() else "x" for c in value)


def cfind(keyword: str, value: str) -> tuple[str, list] | None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    try:
        # pydicom refuses a non-number IS itself (the listener answers that
        # "cannot decode identifier" before matching).
        ds.add_new(ATTRIBUTES[keyword].keyword, ATTRIBUTES[keyword].vr, value)
        query = compile_find(ds, PATIENT_ROOT, MatchOptions())
    except (IdentifierError, ValueError, OverflowError):
        return None
    return query.sql, query.params


MATCHABLE = sorted(k for k, a in ATTRIBUTES.items() if a.expr is not None or a.exists)


@BOUNDED
@given(value=values)
def test_cfind_values_only_ever_become_parameters(value: str) -> None:
    for keyword in MATCHABLE:
        vr = ATTRIBUTES[keyword].vr
        if vr in TEXT_VRS:
            # Refused (too long for the VR) or built: alike for both.
            built, harmless = cfind(keyword, value), cfind(keyword, twin(value))
            assert (built is None) == (harmless is None), keyword
            assert built is None or built[0] == harmless[0], keyword
        else:
            # DA, TM, IS: refused unless made of digits, and only then bound.
            built = cfind(keyword, value)
            if built is not None:
                strings = [p for p in built[1] if isinstance(p, str)]
                assert all(DIGITS.fullmatch(p) for p in strings), (keyword, built[1])


def mwl(keyword: str, value: str, in_sequence: bool) -> tuple[str, list] | None:
    ds = Dataset()
    target = ds
    if in_sequence:
        target = Dataset()
        ds.ScheduledProcedureStepSequence = Sequence([target])
    target.add_new(keyword, "UI" if keyword == "StudyInstanceUID" else "LO", value)
    try:
        return build_query(ds)
    except QueryError:
        return None


@BOUNDED
@given(value=values)
def test_mwl_values_only_ever_become_parameters(value: str) -> None:
    for keyword, key in {**TOP_KEYS, **SPS_KEYS}.items():
        for in_sequence in (False, True) if keyword in SPS_KEYS else (False,):
            built = mwl(keyword, value, in_sequence)
            if key.kind in ("text", "pn"):
                harmless = mwl(keyword, twin(value), in_sequence)
                assert built is not None and harmless is not None, keyword
                assert built[0] == harmless[0], keyword
            elif built is not None:
                flat = [
                    p for param in built[1] for p in (param if isinstance(param, list) else [param])
                ]
                assert all(DIGITS.fullmatch(p) for p in flat), (keyword, built[1])
