from __future__ import annotations

import pytest

from monitor.ingest.phi import features_problem, key_problem, normalize_key
from monitor.ingest.pseudonym import pseudonymize

# (feature name, value): each must be refused, by its name or by its value.
IDENTIFIERS: list[tuple[str, object]] = [
    ("patient_name", "Jane Doe"),
    ("PatientName", "anonymous"),
    ("PATIENT-NAME", "x"),
    ("patientname", "x"),
    ("first_name", "Jane"),
    ("lastName", "Doe"),
    ("referring_physician_name", "Smith"),
    ("name", "Jane"),
    ("mrn", "12345678"),
    ("MRN", "A-99"),
    ("patient_id", "P00042"),
    ("PatientID", "42"),
    ("medical_record_number", "42"),
    ("pat_id", "42"),
    ("hospital_number", "42"),
    ("nhs_number", "943 476 5919"),
    ("dob", "1961-04-02"),
    ("DateOfBirth", "1961-04-02"),
    ("patient_birth_date", "19610402"),
    ("birthdate", "1961"),
    ("phone", "n/a"),
    ("phoneNumber", "x"),
    ("email", "x"),
    ("e-mail", "x"),
    ("home_address", "1 Main St"),
    ("street", "Main St"),
    ("zip_code", "02139"),
    ("postal_code", "SW1A 1AA"),
    ("accession_number", "x"),
    ("AccessionNumber", "x"),
    ("acc_no", "x"),
    ("ssn", "x"),
    ("social_security_number", "x"),
    ("StudyInstanceUID", "1.2.3"),
    ("(0010,0010)", "DOE^JOHN"),
    ("00100020", "12345"),
    ("insurance_id", "x"),
    ("report_text", "no bleed"),
    ("age", 93),
    ("patient_age", "092Y"),
    # Harmless names, identifying values:
    ("requester", "DOE^JOHN"),
    ("contact", "O'Brien^Mary^^Dr"),
    ("site", "jane.doe@hospital.example"),
    ("callback", "(617) 555-0142"),
    ("callback", "+44 20 7946 0958"),
    ("ref", "617.555.0142"),
    ("ref", "6175550142"),
    ("tag", "123-45-6789"),
    ("tag", "MRN: 12345678"),
    ("series", "1.2.840.113619.2.55.3.604688119.969.1268071029.320"),
    ("codes", ["ok", "DOE^JANE"]),
    # A day-precision date identifies under HIPAA Safe Harbor whatever it dates (decision 0403);
    # the record's own time is occurred_at.
    ("study_date", "2026-11-02"),
    ("acquisition_date", "20261102"),
]

# Everyday radiology features: each must pass.
LEGITIMATE: dict[str, object] = {
    "site": "north",
    "site_name": "North Campus",
    "institution_name": "St Mary's General Hospital",
    "institution": pseudonymize("St Mary's General Hospital", key="k", kind="institution"),
    "station": pseudonymize("CT01", key="k", kind="station"),
    "station_name": "CT01",
    "device_serial": pseudonymize("SN-48812", key="k", kind="device"),
    "manufacturer": "GE MEDICAL SYSTEMS",
    "Manufacturer": "SIEMENS",
    "manufacturer_model_name": "Revolution CT",
    "ManufacturerModelName": "SOMATOM Force",
    "scanner_model": "Aquilion ONE",
    "model_name": "Ingenuity CT",
    "software_versions": "syngo CT VA48A\\VA48A",
    "convolution_kernel": "Br40d",
    "kvp": 120,
    "KVP": 120.0,
    "exposure": 300,
    "slice_thickness": 2.5,
    "SliceThickness": 0.625,
    "pixel_spacing_mm": 0.488,
    "pixel_spacing": [0.488, 0.488],
    "rows": 512,
    "columns": 512,
    "matrix": "512x512",
    "modality": "CT",
    "body_part_examined": "HEAD",
    "view_position": "PA",
    "protocol_name": "HEAD ROUTINE 5mm",
    "series_description": "AX 5mm STND",
    "sequence_name": "*tfl3d1_16ns",
    "patient_sex": "F",
    "PatientSex": "M",
    "age_band": "60-69",
    "age_group": "90+",
    "patient_age": 67,
    "age": 45,
    "mean_hu": 31.2,
    "noise_sd": 6.1,
    "ctdi_vol": 52.1,
    "dose_length_product": 845.3,
    "contrast": True,
    "contrast_agent": "Omnipaque 350",
    "window": "40/80",
    "study_month": "2026-11",
    "acquisition_year": "2026",
    "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
    "priority": "STAT",
    "department": "Emergency",
    "reader_id": "R7",
    "field_strength": 1.5,
    "classname": "hemorrhage",
    "missing": None,
}


def test_there_are_enough_cases() -> None:
    assert len(IDENTIFIERS) >= 20 and len(LEGITIMATE) >= 20


@pytest.mark.parametrize(("name", "value"), IDENTIFIERS, ids=[f"{n}={v!r}" for n, v in IDENTIFIERS])
def test_identifiers_are_refused_with_a_reason_that_does_not_repeat_them(name: str, value: object) -> None:
    problem = features_problem({"site": "north", name: value})

    assert problem is not None
    field, reason = problem
    assert field == f"features.{name}" and reason.startswith(f"features.{name} ")
    assert "radmon stores no direct identifiers" in reason or "age band" in reason
    if isinstance(value, str) and len(value) > 2:
        assert value not in reason


@pytest.mark.parametrize(("name", "value"), list(LEGITIMATE.items()), ids=list(LEGITIMATE))
def test_legitimate_features_pass(name: str, value: object) -> None:
    assert features_problem({name: value}) is None


def test_a_full_legitimate_record_passes() -> None:
    assert features_problem(LEGITIMATE) is None


def test_names_are_normalized_before_judging() -> None:
    assert normalize_key("PatientBirthDate") == ("patient", "birth", "date")
    assert normalize_key("patient-birth date") == ("patient", "birth", "date")
    assert normalize_key("MRNumber") == ("mr", "number")
    kinds = {
        key_problem(name) for name in ("PatientName", "patient_name", "patient-name", "Patient Name", "PATIENT_NAME")
    }
    assert kinds == {"patient name"}


def test_the_reason_says_what_kind_of_identifier() -> None:
    assert features_problem({"dob": "x"}) == (
        "features.dob",
        "features.dob looks like an identifier (birth date); radmon stores no direct identifiers",
    )
    reason = features_problem({"accession": "x"})[1]  # type: ignore[index]
    assert "study_key" in reason  # says where an accession number belongs instead
    assert "email address" in features_problem({"note_to": "a.b@c.org"})[1]  # type: ignore[index]
