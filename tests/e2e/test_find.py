"""C-FIND (Patient Root and Study Root) as users run it: DCMTK findscu with
`-X` to extract the responses, pynetdicom for character sets and statuses."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind as PATIENT_ROOT,
)
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind as STUDY_ROOT,
)

from tests.helpers import DCMTK_BIN, Pacs, dcmtk, make_dataset, wait_until, write_dataset

TOKEN = uuid.uuid4().hex[:8].upper()  # keeps this module's patients apart
CHARSET_FILES = ["chrX1.dcm", "chrX2.dcm", "chrH31.dcm", "chrFren.dcm", "chrGreek.dcm", "chrI2.dcm"]
SOP_CT = "1.2.840.10008.5.1.4.1.1.2"


@dataclass
class Corpus:
    study_a: str  # PAT001, 20240115 10:15, CT (2 instances) + MR (1)
    study_b: str  # PAT001, 20231201 23:59, MR
    study_c: str  # Wang, 20240301 08:00, CT
    study_d: str  # O'Brien, 20240301 18:00, US
    series_a_ct: str
    bulk_patient: str  # 3000 instances in one series, inserted in SQL


@pytest.fixture(scope="module")
def corpus(pacs: Pacs, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    files = tmp_path_factory.mktemp("find-corpus")
    uid = generate_uid
    c = Corpus(uid(), uid(), uid(), uid(), uid(), f"{TOKEN}-BULK")
    series_a_mr = uid()
    datasets = [
        make_dataset(
            patient_id="PAT001",
            patient_name="DOE^JOHN",
            study_uid=c.study_a,
            series_uid=c.series_a_ct,
            instance_number=n,
            accession=f"A{TOKEN}1",
            study_description="CT CHEST",
        )
        for n in (1, 2)
    ]
    datasets += [
        make_dataset(
            patient_id="PAT001",
            patient_name="DOE^JOHN",
            study_uid=c.study_a,
            series_uid=series_a_mr,
            modality="MR",
            series_number=2,
            accession=f"A{TOKEN}1",
            study_description="CT CHEST",
        ),
        make_dataset(
            patient_id="PAT001",
            patient_name="DOE^JOHN",
            study_uid=c.study_b,
            modality="MR",
            study_date="20231201",
            study_time="235900",
            accession=f"A{TOKEN}2",
            study_description="MR HEAD",
        ),
        make_dataset(
            patient_id=f"{TOKEN}-2",
            patient_name="Wang^XiaoDong=王^小東",
            study_uid=c.study_c,
            study_date="20240301",
            study_time="080000",
            accession=f"A{TOKEN}3",
            study_description="50%_off",
            extra={"SpecificCharacterSet": "ISO_IR 192"},
        ),
        make_dataset(
            patient_id=f"{TOKEN}-3",
            patient_name="O'BRIEN^DAVE",
            study_uid=c.study_d,
            modality="US",
            study_date="20240301",
            study_time="180000",
            accession=f"A{TOKEN}4",
            study_description="500 off",
        ),
    ]
    paths = [write_dataset(ds, files) for ds in datasets]
    paths += [Path(get_charset_files(name)[0]) for name in CHARSET_FILES]
    dcmtk(
        "storescu", "-aec", pacs.ae_title, pacs.host, str(pacs.port), *map(str, paths), check=True
    )
    pacs.rows(
        """
        WITH p AS (INSERT INTO patients (patient_id, patient_name)
                   VALUES (%(pid)s, 'BULK^CANCEL') RETURNING id),
        st AS (INSERT INTO studies (patient_fk, study_instance_uid, study_date)
               SELECT id, %(study)s, '19990101' FROM p RETURNING id),
        se AS (INSERT INTO series (study_fk, series_instance_uid, modality)
               SELECT id, %(series)s, 'OT' FROM st RETURNING id)
        INSERT INTO instances (series_fk, sop_instance_uid, sop_class_uid, instance_number,
                               transfer_syntax_uid, file_path, file_size)
        SELECT se.id, %(series)s || '.' || g, %(sop)s, g, '1.2.840.10008.1.2.1', 'none', 0
        FROM se, generate_series(1, 3000) g
        RETURNING 1
        """,
        {"pid": c.bulk_patient, "study": uid(), "series": uid(), "sop": SOP_CT},
    )
    return c


# --- findscu ------------------------------------------------------------------


@dataclass
class FindResult:
    returncode: int
    output: str
    responses: list[Dataset]

    @property
    def final(self) -> str:
        match = re.search(r"Received Final Find Response \(([^)]*)\)", self.output)
        return match.group(1) if match else ""

    def values(self, keyword: str) -> list[str]:
        return sorted(str(r.get(keyword, "")) for r in self.responses)


def findscu(pacs: Pacs, workdir: Path, *args: str) -> FindResult:
    """Run findscu exactly as typed (host and port appended), extracting the
    responses with -X into a fresh directory."""
    out = workdir / uuid.uuid4().hex[:8]
    out.mkdir()
    if "-v" not in args:
        args = ("-v", *args)  # prints the final status
    result = subprocess.run(
        [str(DCMTK_BIN / "findscu"), *args, "-X", "-od", str(out), pacs.host, str(pacs.port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    responses = [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]
    return FindResult(result.returncode, result.stdout + result.stderr, responses)


def seed(pacs: Pacs, *args: str) -> list[str]:
    return ["-v", "-aec", pacs.ae_title, *args]


# Sections 3-5 of the seed README, verbatim


def test_seed_find_all_patients(pacs: Pacs, corpus: Corpus, tmp_path: Path) -> None:
    r = findscu(
        pacs,
        tmp_path,
        *seed(
            pacs, "-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientName=*", "-k", "PatientID"
        ),
    )
    assert r.final == "Success", r.output
    ids = r.values("PatientID")
    assert {"PAT001", f"{TOKEN}-2", f"{TOKEN}-3", "H31EXAMPLE", "X1EXAMPLE"} <= set(ids)
    assert len(ids) == len(set(ids))  # one response per patient
    doe = next(x for x in r.responses if x.PatientID == "PAT001")
    assert str(doe.PatientName) == "DOE^JOHN"
    assert doe.QueryRetrieveLevel == "PATIENT"
    assert set(doe.dir()) == {"QueryRetrieveLevel", "PatientName", "PatientID"}


def test_seed_find_specific_patient(pacs: Pacs, corpus: Corpus, tmp_path: Path) -> None:
    r = findscu(
        pacs,
        tmp_path,
        *seed(pacs, "-P", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientName=DOE*"),
    )
    assert r.final == "Success", r.output
    names = r.values("PatientName")
    assert "DOE^JOHN" in names
    assert all(n.upper().startswith("DOE") for n in names)
    # PatientID is the unique key of the level: returned though not asked for
    assert "PAT001" in r.values("PatientID")


def test_seed_find_studies_for_patient(pacs: Pacs, corpus: Corpus, tmp_path: Path) -> None:
    r = findscu(
        pacs,
        tmp_path,
        *seed(
            pacs,
            "-S",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientID=PAT001",
            "-k",
            "StudyDate",
            "-k",
            "StudyDescription",
            "-k",
            "AccessionNumber",
        ),
    )
    assert r.final == "Success", r.output
    ours = {x.StudyInstanceUID: x for x in r.responses if TOKEN in x.AccessionNumber}
    assert set(ours) == {corpus.study_a, corpus.study_b}
    a = ours[corpus.study_a]
    assert (a.StudyDate, a.StudyDescription, a.AccessionNumber) == (
        "20240115",
        "CT CHEST",
        f"A{TOKEN}1",
    )
    assert set(a.dir()) == {
        "QueryRetrieveLevel",
        "PatientID",
        "StudyDate",
        "StudyDescription",
        "AccessionNumber",
        "StudyInstanceUID",
    }


def test_seed_find_studies_by_date_range(pacs: Pacs, corpus: Corpus, tmp_path: Path) -> None:
    r = findscu(
        pacs,
        tmp_path,
        *seed(pacs, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyDate=20240101-20241231"),
    )
    assert r.final == "Success", r.output
    uids = r.values("StudyInstanceUID")  # asked for no UID, yet needs it to move
    assert {corpus.study_a, corpus.study_c, corpus.study_d} <= set(uids)
    assert corpus.study_b not in uids
    assert all("20240101" <= x.StudyDate <= "20241231" for x in r.responses)


def test_seed_find_series(pacs: Pacs, corpus: Corpus, tmp_path: Path) -> None:
    r = findscu(
        pacs,
        tmp_path,
        *seed(
            pacs,
            "-S",
            "-k",
            "QueryRetrieveLevel=SERIES",
            "-k",
            f"StudyInstanceUID={corpus.study_a}",
            "-k",
            "Modality",
            "-k",
            "SeriesDescription",
        ),
    )
    assert r.final == "Success", r.output
    assert r.values("Modality") == ["CT", "MR"]
    assert r.values("SeriesDescription") == ["CT series 1", "MR series 2"]
    assert set(r.values("StudyInstanceUID")) == {corpus.study_a}
    assert corpus.series_a_ct in r.values("SeriesInstanceUID")


def test_patient_root_study_query_without_patient_id(pacs, corpus, tmp_path: Path) -> None:
    uids = study_uids(pacs, tmp_path, f"AccessionNumber=A{TOKEN}4", root="-P")
    assert uids == [corpus.study_d]


def test_c_find_is_counted(pacs: Pacs, corpus: Corpus, tmp_path: Path) -> None:
    before = pacs.settled_counters()
    study_uids(pacs, tmp_path, f"AccessionNumber=A{TOKEN}4")
    pacs.wait_counted(before, c_find_count=1)


# Matching rules


def study_uids(pacs: Pacs, tmp_path: Path, *keys: str, root: str = "-S") -> list[str]:
    args = [root, "-aec", pacs.ae_title, "-k", "QueryRetrieveLevel=STUDY"]
    for key in keys:
        args += ["-k", key]
    r = findscu(pacs, tmp_path, *args)
    assert r.final == "Success", r.output
    return r.values("StudyInstanceUID")


def test_single_value_and_case_sensitive_non_pn(pacs: Pacs, corpus: Corpus, tmp_path) -> None:
    assert study_uids(pacs, tmp_path, f"AccessionNumber=A{TOKEN}3") == [corpus.study_c]
    assert study_uids(pacs, tmp_path, f"AccessionNumber=a{TOKEN.lower()}3") == []


def test_wildcards_and_literal_sql_wildcards(pacs: Pacs, corpus: Corpus, tmp_path) -> None:
    assert study_uids(pacs, tmp_path, f"AccessionNumber=A{TOKEN}?") == sorted(
        [corpus.study_a, corpus.study_b, corpus.study_c, corpus.study_d]
    )
    assert study_uids(pacs, tmp_path, f"AccessionNumber=*{TOKEN}*", "StudyDescription=50%_*") == [
        corpus.study_c
    ]  # not "500 off"
    assert study_uids(pacs, tmp_path, f"AccessionNumber=*{TOKEN}*", "StudyDescription=*_*") == [
        corpus.study_c
    ]


def test_uid_list(pacs: Pacs, corpus: Corpus, tmp_path: Path) -> None:
    assert study_uids(pacs, tmp_path, f"StudyInstanceUID={corpus.study_b}\\{corpus.study_d}") == (
        sorted([corpus.study_b, corpus.study_d])
    )


@pytest.mark.parametrize(
    ("date", "time", "expected"),
    [
        ("20240301", "", {"c", "d"}),
        ("-20240115", "", {"a", "b"}),
        ("20240116-", "", {"c", "d"}),
        ("", "0800-1015", {"a", "c"}),
        ("", "-0759", set()),
        # combined: from 2023-12-01 23:00 to 2024-03-01 08:00
        ("20231201-20240301", "2300-0800", {"a", "b", "c"}),
        ("20231201-20240301", "235901-0759", {"a"}),
    ],
)
def test_date_time_ranges(pacs, corpus, tmp_path, date: str, time: str, expected: set) -> None:
    keys = [f"AccessionNumber=A{TOKEN}*"]
    if date:
        keys.append(f"StudyDate={date}")
    if time:
        keys.append(f"StudyTime={time}")
    names = {corpus.study_a: "a", corpus.study_b: "b", corpus.study_c: "c", corpus.study_d: "d"}
    assert {names[u] for u in study_uids(pacs, tmp_path, *keys)} == expected


def patient_names(pacs: Pacs, tmp_path: Path, *keys: str) -> list[str]:
    args = ["-P", "-aec", pacs.ae_title, "-k", "QueryRetrieveLevel=PATIENT"]
    for key in keys:
        args += ["-k", key]
    r = findscu(pacs, tmp_path, *args)
    assert r.final == "Success", r.output
    return r.values("PatientName")


def test_pn_case_insensitive_and_component_groups(pacs, corpus, tmp_path: Path) -> None:
    wang = "Wang^XiaoDong=王^小東"
    assert wang in patient_names(pacs, tmp_path, "PatientName=wang*")
    assert wang in patient_names(pacs, tmp_path, "PatientName=WANG^XIAODONG")
    assert "O'BRIEN^DAVE" in patient_names(pacs, tmp_path, "PatientName=o'brien*")
    utf8 = ["-k", "SpecificCharacterSet=ISO_IR 192"]
    assert wang in patient_names(pacs, tmp_path, *utf8[1:], "PatientName=王*")
    assert wang in patient_names(pacs, tmp_path, *utf8[1:], "PatientName=Wang*=王*")
    assert wang not in patient_names(pacs, tmp_path, *utf8[1:], "PatientName=Wang*=李*")
    # chrX1 and our own Wang, plus chrX2 (GB18030, simplified 东)
    assert patient_names(pacs, tmp_path, "PatientName=*XIAO*") == sorted(
        ["Wang^XiaoDong=王^小东", wang, wang]
    )


def test_pn_case_sensitive_setting(start_listener, corpus: Corpus, tmp_path: Path) -> None:
    strict = start_listener(PACS_PN_CASE_SENSITIVE="true")
    assert "DOE^JOHN" not in patient_names(strict, tmp_path, "PatientName=doe*")
    assert "DOE^JOHN" in patient_names(strict, tmp_path, "PatientName=DOE*")


def test_modalities_in_study(pacs: Pacs, corpus: Corpus, tmp_path: Path) -> None:
    mine = f"AccessionNumber=A{TOKEN}*"
    assert study_uids(pacs, tmp_path, mine, "ModalitiesInStudy=MR") == sorted(
        [corpus.study_a, corpus.study_b]
    )
    assert study_uids(pacs, tmp_path, mine, "ModalitiesInStudy=US\\MR") == sorted(
        [corpus.study_a, corpus.study_b, corpus.study_d]
    )


# Return keys


def test_computed_keys_and_retrieve_ae(pacs: Pacs, corpus: Corpus, tmp_path: Path) -> None:
    r = findscu(
        pacs,
        tmp_path,
        "-S",
        "-aec",
        pacs.ae_title,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={corpus.study_a}",
        "-k",
        "ModalitiesInStudy",
        "-k",
        "SOPClassesInStudy",
        "-k",
        "NumberOfStudyRelatedSeries",
        "-k",
        "NumberOfStudyRelatedInstances",
        "-k",
        "RetrieveAETitle",
        "-k",
        "PatientComments",
    )
    assert r.final == "Success", r.output
    (study,) = r.responses
    assert list(study.ModalitiesInStudy) == ["CT", "MR"]
    assert study.SOPClassesInStudy == SOP_CT
    assert (study.NumberOfStudyRelatedSeries, study.NumberOfStudyRelatedInstances) == (2, 3)
    assert study.RetrieveAETitle == pacs.ae_title
    assert study.PatientComments == ""  # not in the index: empty...
    assoc = associate(pacs)
    try:  # ...and said so with the 0xFF01 pending status
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = corpus.study_a
        ds.PatientComments = ""
        statuses = [r.Status for r, _ in assoc.send_c_find(ds, STUDY_ROOT)]
        assert statuses == [0xFF01, 0x0000]
    finally:
        assoc.release()

    r = findscu(
        pacs,
        tmp_path,
        "-P",
        "-aec",
        pacs.ae_title,
        "-k",
        "QueryRetrieveLevel=PATIENT",
        "-k",
        "PatientID=PAT001",
        "-k",
        "NumberOfPatientRelatedStudies",
        "-k",
        "NumberOfPatientRelatedSeries",
        "-k",
        "NumberOfPatientRelatedInstances",
    )
    (patient,) = r.responses
    assert patient.NumberOfPatientRelatedStudies >= 2
    assert patient.NumberOfPatientRelatedInstances >= 4

    r = findscu(
        pacs,
        tmp_path,
        "-S",
        "-aec",
        pacs.ae_title,
        "-k",
        "QueryRetrieveLevel=IMAGE",
        "-k",
        f"SeriesInstanceUID={corpus.series_a_ct}",
        "-k",
        "InstanceNumber",
    )
    assert r.values("InstanceNumber") == ["1", "2"]
    assert all(
        set(x.dir())
        == {
            "QueryRetrieveLevel",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "SOPInstanceUID",
            "InstanceNumber",
        }
        for x in r.responses
    )


def test_patient_root_image_level_returns_all_unique_keys(pacs, corpus, tmp_path) -> None:
    r = findscu(
        pacs,
        tmp_path,
        "-P",
        "-aec",
        pacs.ae_title,
        "-k",
        "QueryRetrieveLevel=IMAGE",
        "-k",
        f"SeriesInstanceUID={corpus.series_a_ct}",
    )
    assert len(r.responses) == 2
    assert {x.PatientID for x in r.responses} == {"PAT001"}
    assert {x.StudyInstanceUID for x in r.responses} == {corpus.study_a}


# Bad identifiers: a failure status with a comment, the association stays


@pytest.mark.parametrize(
    ("model", "keys", "status", "comment"),
    [
        (STUDY_ROOT, {"PatientID": ""}, 0xA900, "QueryRetrieveLevel is missing"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "PATIENT"}, 0xA900, "QueryRetrieveLevel PATIENT"),
        (PATIENT_ROOT, {"QueryRetrieveLevel": "FRAME"}, 0xA900, "QueryRetrieveLevel FRAME"),
        (PATIENT_ROOT, {"QueryRetrieveLevel": "PATIENT", "Modality": "CT"}, 0xA900, "Modality"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "STUDY", "StudyDate": "2024"}, 0xC000, "StudyDate"),
    ],
)
def test_bad_identifier(pacs: Pacs, corpus, model: str, keys: dict, status: int, comment: str):
    assoc = associate(pacs)
    try:
        ds = Dataset()
        for keyword, value in keys.items():
            setattr(ds, keyword, value)
        responses = list(assoc.send_c_find(ds, model))
        assert len(responses) == 1
        rsp, identifier = responses[0]
        assert rsp.Status == status
        assert comment in rsp.ErrorComment
        # the association is still up and answers the next query
        good = Dataset()
        good.QueryRetrieveLevel = "STUDY"
        good.StudyInstanceUID = corpus.study_a
        statuses = [r.Status for r, _ in assoc.send_c_find(good, STUDY_ROOT)]
        assert statuses == [0xFF00, 0x0000]
    finally:
        assoc.release()


def test_findscu_sees_failure_and_pacs_logs_no_trace(pacs: Pacs, tmp_path: Path) -> None:
    r = findscu(pacs, tmp_path, "-S", "-aec", pacs.ae_title, "-k", "PatientID")
    assert "Failed" in r.final or "Error" in r.final, r.output
    assert "Traceback" not in pacs.process.log()


# C-CANCEL


def associate(pacs: Pacs):
    ae = AE(ae_title="FINDTEST")
    ae.add_requested_context(PATIENT_ROOT)
    ae.add_requested_context(STUDY_ROOT)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    assert assoc.is_established
    return assoc


def test_c_cancel_stops_a_running_find(pacs: Pacs, corpus: Corpus) -> None:
    assoc = associate(pacs)
    try:
        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.PatientID = corpus.bulk_patient
        ds.InstanceNumber = ""
        statuses = []
        for rsp, _ in assoc.send_c_find(ds, PATIENT_ROOT, msg_id=7):
            statuses.append(rsp.Status)
            if len(statuses) == 1:
                assoc.send_c_cancel(7, query_model=PATIENT_ROOT)
        assert statuses[-1] == 0xFE00
        assert set(statuses[:-1]) == {0xFF00}
        assert len(statuses) < 3000
        # still usable afterwards
        assert assoc.is_established
    finally:
        assoc.release()


def test_findscu_cancel(pacs: Pacs, corpus: Corpus, tmp_path: Path) -> None:
    r = findscu(
        pacs,
        tmp_path,
        "-P",
        "-aec",
        pacs.ae_title,
        "--cancel",
        "2",
        "-k",
        "QueryRetrieveLevel=IMAGE",
        "-k",
        f"PatientID={corpus.bulk_patient}",
    )
    assert "Cancel" in r.final, r.output


def test_max_results_cap(start_listener: Callable[..., Pacs], corpus: Corpus, tmp_path) -> None:
    capped = start_listener(PACS_FIND_MAX_RESULTS="25")
    r = findscu(
        capped,
        tmp_path,
        "-P",
        "-aec",
        capped.ae_title,
        "-k",
        "QueryRetrieveLevel=IMAGE",
        "-k",
        f"PatientID={corpus.bulk_patient}",
    )
    assert r.final == "Success", r.output
    assert len(r.responses) == 25
    wait_until(lambda: "PACS_FIND_MAX_RESULTS=25" in capped.process.log(), 10, "the warning")


# Character sets


def find_names(
    pacs: Pacs, name: str, charset: str | list | None, patient_id: str = ""
) -> list[Dataset]:
    assoc = associate(pacs)
    try:
        ds = Dataset()
        if charset is not None:
            ds.SpecificCharacterSet = charset
        ds.QueryRetrieveLevel = "PATIENT"
        ds.PatientName = name
        ds.PatientID = patient_id
        out = []
        for rsp, identifier in assoc.send_c_find(ds, PATIENT_ROOT):
            if rsp.Status in (0xFF00, 0xFF01):
                out.append(identifier)
            else:
                assert rsp.Status == 0, hex(rsp.Status)
        return out
    finally:
        assoc.release()


def test_iso_2022_ir_87_query_and_answer(pacs: Pacs, corpus: Corpus) -> None:
    (rsp,) = find_names(pacs, "山田*", ["", "ISO 2022 IR 87"])
    assert rsp.PatientID == "H31EXAMPLE"
    assert list(rsp.SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    assert str(rsp.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    (rsp,) = find_names(pacs, "やまだ*", ["", "ISO 2022 IR 87"])  # phonetic group
    assert rsp.PatientID == "H31EXAMPLE"


def test_utf8_query_and_answer(pacs: Pacs, corpus: Corpus) -> None:
    ids = {r.PatientID: r for r in find_names(pacs, "王*", "ISO_IR 192")}
    assert {"X1EXAMPLE", f"{TOKEN}-2"} <= set(ids)
    assert ids["X1EXAMPLE"].SpecificCharacterSet == "ISO_IR 192"
    assert str(ids["X1EXAMPLE"].PatientName) == "Wang^XiaoDong=王^小東"
    (rsp,) = find_names(pacs, "홍*", "ISO_IR 192")
    assert str(rsp.PatientName) == "Hong^Gildong=洪^吉洞=홍^길동"


def test_answer_charset_carries_every_value(pacs: Pacs, corpus: Corpus) -> None:
    # ASCII query, no charset: the answer switches to UTF-8 to carry 王
    ids = {r.PatientID: r for r in find_names(pacs, "Wang^XiaoDong", None)}
    assert ids["X1EXAMPLE"].SpecificCharacterSet == "ISO_IR 192"
    assert str(ids["X1EXAMPLE"].PatientName) == "Wang^XiaoDong=王^小東"
    # Latin-1 query gets Latin-1 back when it fits...
    (rsp,) = find_names(pacs, "buc^jér*", "ISO_IR 100")
    assert (rsp.SpecificCharacterSet, str(rsp.PatientName)) == ("ISO_IR 100", "Buc^Jérôme")
    # ...and UTF-8 when it does not
    (rsp,) = find_names(pacs, "", "ISO_IR 100", patient_id="SCSGREEK")
    assert (rsp.SpecificCharacterSet, str(rsp.PatientName)) == ("ISO_IR 192", "Διονυσιος")
