"""DICOM header features: the allow-list, age bands, pseudonyms and no PHI in the output."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import PersonName

from monitor.errors import ConfigurationError, Invalid
from monitor.ingest.dicom import age_band, features_from_dicom
from monitor.ingest.pseudonym import pseudonymize

KEY = "test-pseudonym-key-0123456789"

# Written out here rather than imported, so a feature added to the module fails this test.
ALLOWED_FEATURES = {
    "modality", "manufacturer", "manufacturer_model_name", "software_versions",
    "body_part_examined", "view_position", "kvp", "exposure", "slice_thickness",
    "pixel_spacing_mm", "pixel_spacing_col_mm", "rows", "columns", "convolution_kernel",
    "patient_sex", "age_band", "institution", "station", "device_serial",
}  # fmt: skip

# Real files from pydicom's test data and pydicom-data, one or more per manufacturer.
TEST_FILES = {
    "CT_small.dcm": "GE MEDICAL SYSTEMS",  # CT
    "MR_small.dcm": "TOSHIBA_MEC",  # MR
    "examples_overlay.dcm": "SIEMENS",  # MR, real-looking PHI incl. birth date and accession
    "bad_sequence.dcm": "SIEMENS",  # CT, non-standard age "22Y"
    "RG1_UNCR.dcm": "Philips Medical Systems",  # CR, zero pixel spacing
    "examples_palette.dcm": "Philips Medical Systems",  # US, five software versions
    "RG3_UNCR.dcm": "FUJI PHOTO FILM CO. LTD.",  # CR
    "US1_UNCR.dcm": "G.E. Medical Systems",  # US
    "6154": "Agfa-Gevaert AG",  # CR from a DICOMDIR set, kVp and mAs written as 0
}

PHI_KEYWORDS = (
    "PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "PatientAddress",
    "PatientTelephoneNumbers", "AccessionNumber", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber", "ReferringPhysicianName",
    "PerformingPhysicianName", "OperatorsName", "NameOfPhysiciansReadingStudy",
    "RequestingPhysician", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
    "FrameOfReferenceUID", "StudyID", "StudyDate", "SeriesDate",
    "AcquisitionDate", "ContentDate", "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime",
    "StudyDescription", "SeriesDescription", "ImageComments",
)  # fmt: skip

PSEUDONYM = re.compile(r"(ins|sta|dev)-[0-9a-f]{40}")


def data_file(name: str) -> str:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} missing: install the test extra (pydicom-data)"
    return str(path)


def phi_values(dataset: Dataset) -> set[str]:
    """Every non-empty identifying string in the source, and the parts of person names."""
    values: set[str] = set()
    for keyword in PHI_KEYWORDS:
        value = dataset.get(keyword)
        for part in value if isinstance(value, MultiValue) else [value]:
            if part is None:
                continue
            values.add(str(part).strip())
            if isinstance(part, PersonName):
                values.update(component.strip() for component in part.components)
                values.update(part.family_name.split() + part.given_name.split())
    return {value for value in values if value}


def allow_listed_text(dataset: Dataset) -> str:
    keywords = [
        "Modality",
        "Manufacturer",
        "ManufacturerModelName",
        "SoftwareVersions",
        "BodyPartExamined",
        "ViewPosition",
        "KVP",
        "Exposure",
        "SliceThickness",
        "PixelSpacing",
        "Rows",
        "Columns",
        "ConvolutionKernel",
        "PatientSex",
        "PatientAge",
    ]
    return " ".join(str(dataset.get(keyword, "")) for keyword in keywords)


def synthetic_file(**elements: object) -> bytes:
    """A minimal CT file with the given elements, as bytes."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = CTImageStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.SOPClassUID = CTImageStorage
    for keyword, value in elements.items():
        setattr(dataset, keyword, value)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# Real files ---------------------------------------------------------------------------------


def test_ct_small_becomes_exactly_the_allow_listed_features() -> None:
    features = features_from_dicom(data_file("CT_small.dcm"), pseudonym_key=KEY)

    assert features == {
        "modality": "CT",
        "manufacturer": "GE MEDICAL SYSTEMS",
        "manufacturer_model_name": "RHAPSODE",
        "software_versions": "05",
        "convolution_kernel": "STANDARD",
        "kvp": 120.0,
        "exposure": 170.0,
        "slice_thickness": 5.0,
        "pixel_spacing_mm": 0.661468,
        "pixel_spacing_col_mm": 0.661468,
        "rows": 128,
        "columns": 128,
        "patient_sex": "O",
        "age_band": "0-9",
        "institution": pseudonymize("JFK IMAGING CENTER", key=KEY, kind="institution"),
        "station": pseudonymize("CT01_OC0", key=KEY, kind="station"),
    }
    assert type(features["kvp"]) is float and type(features["rows"]) is int


def test_mr_small_omits_what_the_header_lacks() -> None:
    features = features_from_dicom(data_file("MR_small.dcm"), pseudonym_key=KEY)

    assert features == {
        "modality": "MR",
        "manufacturer": "TOSHIBA_MEC",
        "manufacturer_model_name": "MRT50H1",
        "software_versions": "V3.51*P25",
        "slice_thickness": 0.8,
        "pixel_spacing_mm": 0.3125,
        "pixel_spacing_col_mm": 0.3125,
        "rows": 64,
        "columns": 64,
        "patient_sex": "F",
        "institution": pseudonymize("TOSHIBA", key=KEY, kind="institution"),
        "station": pseudonymize("000000000", key=KEY, kind="station"),
        "device_serial": pseudonymize("-0000200", key=KEY, kind="device"),
    }  # no KVP, Exposure, kernel, body part, view or age in this header: no keys, no None


@pytest.mark.parametrize(("name", "manufacturer"), TEST_FILES.items())
def test_each_manufacturer_is_read(name: str, manufacturer: str) -> None:
    features = features_from_dicom(data_file(name), pseudonym_key=KEY)

    assert features["manufacturer"] == manufacturer
    assert features["modality"] in {"CT", "MR", "CR", "US"}
    assert all(value is not None and value != "" for value in features.values())


@pytest.mark.filterwarnings("ignore::UserWarning")  # bad_sequence.dcm has invalid UIDs
@pytest.mark.parametrize("name", TEST_FILES)
def test_no_phi_survives(name: str) -> None:
    source = pydicom.dcmread(data_file(name), stop_before_pixels=True)
    features = features_from_dicom(data_file(name), pseudonym_key=KEY)

    assert set(features) <= ALLOWED_FEATURES
    identified = ("institution", "station", "device_serial")
    pseudonyms = {features[key] for key in identified if key in features}
    assert all(PSEUDONYM.fullmatch(str(token)) for token in pseudonyms)
    # A hex digest may contain "00000" by chance; its shape is checked above instead.
    texts = [*features, *(str(value) for value in features.values() if value not in pseudonyms)]
    # MR_small's institution is "TOSHIBA", which its manufacturer "TOSHIBA_MEC" legitimately
    # repeats; a value the source itself writes into an allow-listed element is not a leak.
    allowed = allow_listed_text(source)
    phi = phi_values(source)
    assert phi, "the test file should carry identifiers for this test to mean anything"
    for value in phi - {value for value in phi if value in allowed}:
        assert value not in texts
        if len(value) >= 3:  # shorter ones ("2", "OB") occur in any number or code
            assert not any(value in text for text in texts), (value, features)


def test_no_phi_survives_in_a_header_full_of_it() -> None:
    data = synthetic_file(
        Modality="CT",
        Manufacturer="GE MEDICAL SYSTEMS",
        PatientName="Doe^Jane",
        PatientID="MRN0042",
        PatientBirthDate="19610304",
        PatientAddress="1 Main Street",
        AccessionNumber="ACC123456",
        InstitutionName="Saint Elsewhere",
        StationName="CTSCAN01",
        DeviceSerialNumber="SN998877",
        ReferringPhysicianName="House^Gregory",
        StudyInstanceUID="1.2.3.4.5.6.7",
        ImageComments="patient Jane Doe, MRN0042",
        StudyDescription="CT HEAD for Jane Doe",
        PatientAge="047Y",
    )
    features = features_from_dicom(data, pseudonym_key=KEY)

    assert set(features) == {
        "modality", "manufacturer", "age_band", "institution", "station", "device_serial"
    }  # fmt: skip
    text = repr(features)
    for identifier in ("Doe", "Jane", "MRN0042", "1961", "Main", "ACC123456", "Elsewhere",
                       "CTSCAN01", "SN998877", "House", "1.2.3.4.5", "HEAD"):  # fmt: skip
        assert identifier not in text


def test_private_and_unknown_tags_are_dropped() -> None:
    dataset = pydicom.dcmread(io.BytesIO(synthetic_file(Modality="MR")))
    dataset.private_block(0x0029, "ACME 1.0", create=True).add_new(0x10, "LO", "Doe^Jane")
    dataset.add_new(0x00091001, "LO", "also Doe")  # private, without a creator

    assert features_from_dicom(dataset, pseudonym_key=KEY) == {"modality": "MR"}


# Cleaning -----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # the lower case is on purpose
def test_values_are_stripped_joined_and_typed() -> None:
    data = synthetic_file(
        Modality="ct",
        BodyPartExamined=" chest ",
        ViewPosition="PA ",
        Manufacturer="  SIEMENS ",
        ManufacturerModelName="SOMATOM Force",
        SoftwareVersions=["syngo CT VA50A", "", " SOMARIS/7 "],
        ConvolutionKernel=["Br40f", "3"],
        KVP="100",
        Exposure="250",
        SliceThickness="0.625",
        PixelSpacing=["0.5", "0.4"],
        Rows=512,
        Columns=256,
        PatientSex="m",
        PatientAge="063Y",
    )

    assert features_from_dicom(data, pseudonym_key=KEY) == {
        "modality": "CT",
        "body_part_examined": "CHEST",
        "view_position": "PA",
        "manufacturer": "SIEMENS",
        "manufacturer_model_name": "SOMATOM Force",
        "software_versions": "syngo CT VA50A\\SOMARIS/7",
        "convolution_kernel": "Br40f\\3",
        "kvp": 100.0,
        "exposure": 250.0,
        "slice_thickness": 0.625,
        "pixel_spacing_mm": 0.5,
        "pixel_spacing_col_mm": 0.4,
        "rows": 512,
        "columns": 256,
        "patient_sex": "M",
        "age_band": "60-69",
    }


def test_placeholder_zeros_and_empty_values_are_omitted() -> None:
    # The Philips CR writes PixelSpacing 0\0; the Agfa CR writes KVP 0, Exposure 0, PatientSex "".
    philips = features_from_dicom(data_file("RG1_UNCR.dcm"), pseudonym_key=KEY)
    agfa = features_from_dicom(data_file("6154"), pseudonym_key=KEY)

    assert philips["kvp"] == 150.0 and philips["exposure"] == 2.0
    assert "pixel_spacing_mm" not in philips and "pixel_spacing_col_mm" not in philips
    assert not {"kvp", "exposure", "patient_sex"} & set(agfa)
    assert agfa["age_band"] == "40-49" and agfa["view_position"] == "LL"


def test_garbled_values_are_omitted_not_fatal() -> None:
    # pydicom refuses to write invalid numbers, so patch them into the bytes.
    data = synthetic_file(
        Modality="CT", KVP="1111", Exposure="2222", SliceThickness="3333",
        PixelSpacing=["4444", "5555"], PatientSex="X", PatientAge="063Y",
    )  # fmt: skip
    for placeholder, garbled in [
        (b"1111", b"abc "), (b"2222", b"2.5 "), (b"3333", b"nan "), (b"5555", b"x   "),
        (b"063Y", b"63  "),
    ]:  # fmt: skip
        data = data.replace(placeholder, garbled)

    with pytest.warns(UserWarning):  # pydicom's own note on the invalid values
        features = features_from_dicom(data, pseudonym_key=KEY)

    # An integer string holding "2.5" mAs is still a usable exposure; the rest is noise.
    assert features == {"modality": "CT", "exposure": 2.5}


# Sources and errors -------------------------------------------------------------------------


def test_every_kind_of_source_gives_the_same_features() -> None:
    path = data_file("CT_small.dcm")
    expected = features_from_dicom(path, pseudonym_key=KEY)
    data = Path(path).read_bytes()

    with open(path, "rb") as stream:
        from_stream = features_from_dicom(stream, pseudonym_key=KEY)
    assert from_stream == expected
    assert features_from_dicom(Path(path), pseudonym_key=KEY) == expected
    assert features_from_dicom(data, pseudonym_key=KEY) == expected
    assert features_from_dicom(pydicom.dcmread(path), pseudonym_key=KEY) == expected


class ReadTracker(io.BytesIO):
    """A stream that remembers how far it was read."""

    furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return chunk


def test_pixel_data_is_never_read() -> None:
    data = Path(data_file("CT_small.dcm")).read_bytes()
    pixel_data = data.index(b"\xe0\x7f\x10\x00")  # (7FE0,0010) little endian
    stream = ReadTracker(data)

    features = features_from_dicom(stream, pseudonym_key=KEY)

    assert stream.furthest <= pixel_data + 12  # at most the element's tag, VR and length
    # so a file cut anywhere in its pixel data gives the same features
    assert features_from_dicom(data[: pixel_data + 100], pseudonym_key=KEY) == features


@pytest.mark.parametrize("data", [b"", b'{"modality": "CT"}', b"\x00" * 128 + b"DICX" + b"\x00" * 64, b"x" * 4096])
def test_not_dicom_is_invalid(data: bytes) -> None:
    with pytest.raises(Invalid, match="not a DICOM file"):
        features_from_dicom(data, pseudonym_key=KEY)


def test_a_text_file_on_disk_is_invalid(tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("FINDINGS: no acute intracranial haemorrhage.\n" * 10)

    with pytest.raises(Invalid, match="not a DICOM file"):
        features_from_dicom(report, pseudonym_key=KEY)


def test_a_missing_file_is_invalid_without_echoing_its_path(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as raised:
        features_from_dicom(tmp_path / "Doe^Jane" / "IM0001.dcm", pseudonym_key=KEY)

    assert "No such file" in raised.value.message
    assert "Doe" not in raised.value.message


def test_a_truncated_header_is_invalid() -> None:
    data = Path(data_file("CT_small.dcm")).read_bytes()

    with pytest.raises(Invalid, match="truncated or damaged"):
        features_from_dicom(data[:142], pseudonym_key=KEY)  # inside the first meta element
    meta_only = synthetic_file()
    meta_only = meta_only[: meta_only.index(b"\x08\x00\x16\x00UI")]  # cut before SOPClassUID
    with pytest.raises(Invalid, match="no data elements"):
        features_from_dicom(meta_only, pseudonym_key=KEY)


def test_a_pseudonym_key_is_required() -> None:
    with pytest.raises(ConfigurationError):
        features_from_dicom(data_file("CT_small.dcm"), pseudonym_key="")


# Pseudonyms ---------------------------------------------------------------------------------


def test_pseudonyms_are_stable_and_ignore_padding() -> None:
    first = features_from_dicom(data_file("US1_UNCR.dcm"), pseudonym_key=KEY)
    again = features_from_dicom(Path(data_file("US1_UNCR.dcm")).read_bytes(), pseudonym_key=KEY)
    padded = features_from_dicom(
        synthetic_file(
            InstitutionName="  BAPTIST MED CTR ",
            StationName="mvme22 ",
            DeviceSerialNumber="4121885",
        ),
        pseudonym_key=KEY,
    )

    for feature in ("institution", "station", "device_serial"):
        assert first[feature] == again[feature] == padded[feature]


def test_pseudonyms_depend_on_the_key() -> None:
    ours = features_from_dicom(data_file("MR_small.dcm"), pseudonym_key=KEY)
    theirs = features_from_dicom(data_file("MR_small.dcm"), pseudonym_key="another-site-key-98765")

    for feature in ("institution", "station", "device_serial"):
        assert ours[feature] != theirs[feature]
    identified = ("institution", "station", "device_serial")
    assert {k: v for k, v in ours.items() if k not in identified} == {
        k: v for k, v in theirs.items() if k not in identified
    }


def test_pseudonym_kinds_are_kept_apart() -> None:
    data = synthetic_file(InstitutionName="RAD1", StationName="RAD1", DeviceSerialNumber="RAD1")

    features = features_from_dicom(data, pseudonym_key=KEY)

    assert len({features["institution"], features["station"], features["device_serial"]}) == 3


# Age bands ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patient_age", "band"),
    [
        ("000D", "0-9"),
        ("003M", "0-9"),
        ("999D", "0-9"),
        ("521W", "0-9"),  # 9.99 years
        ("522W", "10-19"),  # 10.003 years
        ("119M", "0-9"),
        ("120M", "10-19"),
        ("009Y", "0-9"),
        ("010Y", "10-19"),
        ("130M", "10-19"),
        ("017Y", "10-19"),
        ("999W", "10-19"),
        ("22Y", "20-29"),  # as some devices write it (bad_sequence.dcm)
        ("063Y", "60-69"),
        (" 063y ", "60-69"),
        ("999M", "80-89"),
        ("089Y", "80-89"),
        ("090Y", "90+"),
        ("104Y", "90+"),
        ("999Y", "90+"),
    ],
)
def test_age_band(patient_age: str, band: str) -> None:
    assert age_band(patient_age) == band


@pytest.mark.parametrize(
    "patient_age",
    [None, "", "   ", "063", "Y", "abcY", "063X", "-05Y", "6.3Y", "063Y063", "1000Y", 63],
)
def test_age_band_of_missing_or_garbled_age_is_none(patient_age: object) -> None:
    assert age_band(patient_age) is None
