"""What the worklist and MPPS tests share: adding items with the CLI, MWL
queries with DCMTK's findscu -W, and a pynetdicom modality for MPPS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityPerformedProcedureStep, Verification

from tests.helpers import Pacs, dcmtk


def add_item(pacs: Pacs, **flags: str) -> int:
    """`minipacs worklist add --flag value ...`; returns the printed id."""
    args = ["worklist", "add"]
    for name, value in flags.items():
        args += ["--" + name.replace("_", "-"), value]
    result = pacs.minipacs(*args)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def findscu_w(pacs: Pacs, out_dir: Path, *keys: str) -> list[Dataset]:
    """Run `findscu -W -X` with `-k` keys; the responses as datasets."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("rsp*.dcm"):
        old.unlink()
    args = ["-aec", pacs.ae_title, "-W", "-X", "-od", str(out_dir)]
    for key in keys:
        args += ["-k", key]
    result = dcmtk("findscu", *args, pacs.host, str(pacs.port), check=True)
    assert "Failed" not in result.stdout + result.stderr, result.stdout + result.stderr
    return [dcmread(path) for path in sorted(out_dir.glob("rsp*.dcm"))]


_ELEMENT = re.compile(r"^I: (\s*)\((\w{4}),(\w{4})\) \w\w (?:\[(.*?)\]|\(no value available\))")


def parse_verbose(output: str) -> list[dict[str, str]]:
    """The responses of `findscu -v` output: per response, the elements as
    {"(gggg,eeee)": value} for the top level and {">(gggg,eeee)": value} for
    elements nested in a sequence item."""
    responses: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in output.splitlines():
        if re.match(r"^I: Find Response: \d+ \(Pending\)", line):
            current = {}
            responses.append(current)
            continue
        if current is None:
            continue
        if "Final Find Response" in line:
            current = None
            continue
        match = _ELEMENT.match(line)
        if match:
            indent, group, elem, value = match.groups()
            prefix = ">" if indent else ""
            current[f"{prefix}({group},{elem})".upper()] = (value or "").rstrip(" ")
    return responses


@contextmanager
def modality(pacs: Pacs, ae_title: str = "MODALITY") -> Iterator[Association]:
    """An association proposing MPPS (and Verification), released at the end."""
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(ModalityPerformedProcedureStep)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
