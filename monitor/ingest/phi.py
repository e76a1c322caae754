"""PHI guard: refuses features whose names or values look like direct patient identifiers.

radmon stores no direct identifiers (DESIGN section 10). Study keys are pseudonymized on the
way in; everything in `features` is stored as sent, so this module is the last line before
the database. It judges names (normalized: case, separators and camelCase do not matter) and
string values by shape. Reasons name the field and the kind of identifier, never the value:
an answer or a log line must not repeat the PHI it refused.

Legitimate radiology features (age_band "60-69", kvp, manufacturer "GE MEDICAL SYSTEMS",
manufacturer_model_name, station/institution names or their pseudonyms, slice_thickness, site
names...) must pass; tests/ingest/test_phi.py holds both lists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

ADVICE = "radmon stores no direct identifiers"

# Tokens that make a "...name" key a person's name (station_name, manufacturer_model_name,
# protocol_name, institution_name are not).
_PERSON_TOKENS = frozenset(
    [
        "patient",
        "patients",
        "pt",
        "pat",
        "first",
        "last",
        "given",
        "family",
        "full",
        "middle",
        "maiden",
        "sur",
        "fore",
        "mother",
        "mothers",
        "father",
        "fathers",
        "physician",
        "physicians",
        "doctor",
        "dr",
        "referring",
        "performing",
        "requesting",
        "attending",
        "ordering",
        "operator",
        "operators",
        "radiologist",
        "radiologists",
        "reader",
        "technologist",
        "tech",
        "nurse",
        "person",
        "persons",
        "contact",
        "guardian",
        "kin",
        "relative",
        "spouse",
        "responsible",
        "reporting",
        "author",
        "user",
        "subject",
    ]
)
_NUMBER_TOKENS = frozenset(
    ["id", "ids", "identifier", "identifiers", "number", "numbers", "num", "no", "nr", "nbr", "code"]
)
_ID_OWNER_TOKENS = frozenset(
    [
        "patient",
        "patients",
        "pt",
        "pat",
        "subject",
        "person",
        "member",
        "beneficiary",
        "insurance",
        "insured",
        "chart",
        "account",
        "nhs",
        "national",
        "medicare",
        "medicaid",
        "passport",
        "license",
        "licence",
        "social",
    ]
)
_ADDRESS_TOKENS = frozenset(
    ["address", "addresses", "addr", "street", "zip", "zipcode", "postcode", "postal", "residence", "domicile"]
)
_LOCATION_TOKENS = frozenset(["city", "county", "town", "village", "country", "region", "location"])
_AGE_BAND_TOKENS = frozenset(
    ["band", "bands", "group", "groups", "range", "bucket", "bin", "bins", "category", "class", "decade"]
)

# Substrings of the key with every separator removed ("PatientName", "patient-name", "PATIENTNAME"
# all become "patientname"), each with the kind of identifier it names.
_COMPACT_RULES: tuple[tuple[str, str], ...] = (
    ("patientname", "patient name"),
    ("patientsname", "patient name"),
    ("firstname", "person name"),
    ("lastname", "person name"),
    ("surname", "person name"),
    ("forename", "person name"),
    ("givenname", "person name"),
    ("familyname", "person name"),
    ("fullname", "person name"),
    ("middlename", "person name"),
    ("maidenname", "person name"),
    ("physicianname", "person name"),
    ("physiciansname", "person name"),
    ("operatorsname", "person name"),
    ("patientid", "patient identifier (MRN / patient id)"),
    ("patientsid", "patient identifier (MRN / patient id)"),
    ("mrn", "medical record number"),
    ("medicalrecord", "medical record number"),
    ("mrnumber", "medical record number"),
    ("recordnumber", "medical record number"),
    ("chartnumber", "medical record number"),
    ("hospitalnumber", "patient identifier (MRN / patient id)"),
    ("nhsnumber", "national patient identifier"),
    ("nationalid", "national identifier"),
    ("socialsecurity", "social security number"),
    ("socialinsurance", "social insurance number"),
    ("insurancenumber", "insurance number"),
    ("insuranceid", "insurance number"),
    ("memberid", "health plan member number"),
    ("healthplan", "health plan number"),
    ("birth", "birth date"),
    ("deathdate", "date of death"),
    ("dateofdeath", "date of death"),
    ("admissiondate", "admission date"),
    ("admitdate", "admission date"),
    ("dischargedate", "discharge date"),
    ("phone", "phone number"),
    ("mobilenumber", "phone number"),
    ("cellnumber", "phone number"),
    ("pager", "phone number"),
    ("email", "email address"),
    ("address", "address"),
    ("zipcode", "address"),
    ("postcode", "address"),
    ("postalcode", "address"),
    ("accession", "raw accession number (send it as study_key, which is pseudonymized)"),
    ("accno", "raw accession number (send it as study_key, which is pseudonymized)"),
    ("instanceuid", "DICOM instance UID (send the study's identifier as study_key)"),
    ("studyuid", "DICOM instance UID (send the study's identifier as study_key)"),
    ("seriesuid", "DICOM instance UID (send the study's identifier as study_key)"),
    ("studyid", "study identifier (send it as study_key, which is pseudonymized)"),
    ("passport", "passport number"),
    ("driverslicense", "licence number"),
    ("licenseplate", "vehicle identifier"),
    ("freetext", "free text (reports and notes carry names and identifiers)"),
    ("reporttext", "free text (reports and notes carry names and identifiers)"),
    ("clinicalnotes", "free text (reports and notes carry names and identifiers)"),
)
# Whole normalized keys that are identifiers on their own.
_EXACT_KEYS = {
    "name": "person name",
    "names": "person name",
    "dob": "birth date",
    "dod": "date of death",
    "ssn": "social security number",
    "pid": "patient identifier (MRN / patient id)",
    "empi": "patient identifier (MRN / patient id)",
    "tel": "phone number",
    "fax": "phone number",
    "mail": "email address",
    "report": "free text (reports and notes carry names and identifiers)",
    "notes": "free text (reports and notes carry names and identifiers)",
    "note": "free text (reports and notes carry names and identifiers)",
    "comment": "free text (reports and notes carry names and identifiers)",
    "comments": "free text (reports and notes carry names and identifiers)",
    "narrative": "free text (reports and notes carry names and identifiers)",
}
# Identifier tokens wherever they appear (patient_ssn, home_fax).
_TOKEN_RULES = {
    "ssn": "social security number",
    "mrn": "medical record number",
    "dob": "birth date",
    "empi": "patient identifier (MRN / patient id)",
    "fax": "phone number",
    "email": "email address",
}

# DICOM tags given as keys ("(0010,0010)", "00100010"): the patient module and the other
# elements that identify a person or a study. Sex, age, size and weight (0010,0040/1010/1020/1030)
# are ordinary features.
_DICOM_TAG = re.compile(r"^\(?\s*([0-9a-f]{4})\s*[,|]?\s*([0-9a-f]{4})\s*\)?$")
_IDENTIFYING_TAGS = {
    "00080050": "raw accession number (send it as study_key, which is pseudonymized)",
    "00080090": "person name",
    "00081050": "person name",
    "00081070": "person name",
    "00080081": "address",
    "00080092": "address",
    "00080094": "phone number",
    "0020000d": "DICOM instance UID (send the study's identifier as study_key)",
    "0020000e": "DICOM instance UID (send the study's identifier as study_key)",
    "00080018": "DICOM instance UID (send the study's identifier as study_key)",
    "00200010": "study id",
}
_HARMLESS_PATIENT_TAGS = {"00100040", "00101010", "00101020", "00101030"}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^0-9a-z]+")


def normalize_key(key: str) -> tuple[str, ...]:
    """Lower-case word tokens of a key: "PatientBirthDate", "patient-birth date" -> (patient, birth, date)."""
    spaced = _CAMEL.sub("_", key).lower()
    return tuple(token for token in _SEPARATORS.split(spaced) if token)


@lru_cache(maxsize=8192)
def key_problem(key: str) -> str | None:
    """The kind of identifier a feature name denotes, or None when the name is harmless."""
    tag = _DICOM_TAG.match(key.strip().lower())
    if tag:
        code = tag[1] + tag[2]
        if code in _IDENTIFYING_TAGS:
            return _IDENTIFYING_TAGS[code]
        if code.startswith("0010") and code not in _HARMLESS_PATIENT_TAGS:
            return "patient identifier (DICOM patient module)"
    tokens = normalize_key(key)
    compact = "".join(tokens)
    if compact in _EXACT_KEYS:
        return _EXACT_KEYS[compact]
    words = set(tokens)
    for token, kind in _TOKEN_RULES.items():
        if token in words:
            return kind
    for fragment, kind in _COMPACT_RULES:
        if fragment in compact:
            return kind
    if words & {"name", "names"} and words & _PERSON_TOKENS:
        return "person name"
    if words & _NUMBER_TOKENS and words & _ID_OWNER_TOKENS:
        return "patient identifier (MRN / patient id)"
    if words & _ADDRESS_TOKENS:
        return "address"
    if words & _LOCATION_TOKENS and words & {"patient", "patients", "home", "residence"}:
        return "address"
    return None


_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# DICOM person name: family^given[^middle^prefix^suffix] ("DOE^JOHN", "O'Brien^Mary^^Dr").
_PERSON_NAME = re.compile(r"[^\W\d_]+(?:[ '.\-][^\W\d_]*)*\^[^\W\d_]*(?:[ '.\-^][^\W\d_]*)*\^*")
_SSN = re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")
_PHONE_CHARS = re.compile(r"\+?[\d\s().\-/]+")
_LABELLED_ID = re.compile(
    r"^\s*(?:mrn|pid|acc|accession|patient\s*id|pat\s*id|ssn)\s*(?:no\.?|number|#)?\s*[:#=\-]?\s*\d{4,}", re.IGNORECASE
)
_INSTANCE_UID = re.compile(r"\d+(?:\.\d+){6,}")
_DICOM_AGE = re.compile(r"(\d{1,3})\s*Y", re.IGNORECASE)


@lru_cache(maxsize=65536)
def value_problem(value: str) -> str | None:
    """The kind of identifier a string value looks like, or None."""
    if len(value) < 3:
        return None
    if "@" in value and _EMAIL.search(value):
        return "an email address"
    if "^" in value and _PERSON_NAME.fullmatch(value.strip()):
        return "a DICOM person name (FAMILY^GIVEN)"
    digits = sum(character.isdigit() for character in value)
    if digits < 4:
        return None
    if _SSN.search(value):
        return "a social security number"
    if _LABELLED_ID.match(value):
        return "a labelled patient or accession number"
    stripped = value.strip()
    if 10 <= digits <= 15 and _PHONE_CHARS.fullmatch(stripped):
        return "a phone number, or a record or accession number"
    if len(stripped) > 30 and _INSTANCE_UID.fullmatch(stripped):
        return "a DICOM instance UID"
    return None


def _age_over_89(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value) and value >= 90
    if isinstance(value, str):
        match = _DICOM_AGE.fullmatch(value.strip()) or re.fullmatch(r"(\d{1,3})", value.strip())
        return match is not None and int(match[1]) >= 90
    return False


def feature_problem(key: str, value: object) -> str | None:
    """A readable reason why one feature may not be stored, or None when it may."""
    found = features_problem({key: value})
    return found[1] if found else None


def features_problem(features: Mapping[str, object]) -> tuple[str, str] | None:
    """(field, reason) for the first feature that may not be stored, or None."""
    names = names_verdict(tuple(features))
    if names.problem is not None:
        return names.problem
    for key, value in features.items():
        if value.__class__ is str:
            looks_like = value_problem(value)  # type: ignore[arg-type]
        elif value.__class__ is list:
            looks_like = list_problem(value)  # type: ignore[arg-type]
        else:
            continue  # numbers, booleans and nulls carry no identifier by shape
        if looks_like is not None:
            return value_reason(key, looks_like)
    return age_problem(features, names.age_keys)


def value_reason(key: str, looks_like: str) -> tuple[str, str]:
    """(field, reason) for a value judged by value_problem()."""
    return f"features.{key}", f"features.{key} has a value that looks like {looks_like}; {ADVICE}"


def list_problem(values: list[object]) -> str | None:
    """value_problem() of the first identifier-like string in a list."""
    for item in values:
        if isinstance(item, str) and (looks_like := value_problem(item)) is not None:
            return looks_like
    return None


def age_problem(features: Mapping[str, object], age_keys: tuple[str, ...]) -> tuple[str, str] | None:
    """(field, reason) when an age feature gives an age over 89."""
    for key in age_keys:
        value = features[key]
        if any(_age_over_89(item) for item in (value if isinstance(value, list) else (value,))):
            return f"features.{key}", (
                f"features.{key} gives an age over 89, which identifies patients (HIPAA Safe Harbor); "
                "send an age band such as '90+' instead"
            )
    return None


class NamesVerdict(NamedTuple):
    problem: tuple[str, str] | None  # (field, reason) for the first identifier-like name
    age_keys: tuple[str, ...]  # names holding an age, whose values need a look


@lru_cache(maxsize=4096)
def names_verdict(keys: tuple[str, ...]) -> NamesVerdict:
    """The feature names of a record, judged together: records of one source share them, so
    a batch pays for the judgement once."""
    for key in keys:
        kind = key_problem(key)
        if kind is not None:
            return NamesVerdict((f"features.{key}", f"features.{key} looks like an identifier ({kind}); {ADVICE}"), ())
    return NamesVerdict(None, tuple(key for key in keys if _is_age_key(key)))


def _is_age_key(key: str) -> bool:
    words = set(normalize_key(key))
    return "age" in words and not words & _AGE_BAND_TOKENS
