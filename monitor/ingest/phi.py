"""The PHI gate: every path that stores client text passes through here (decisions 0401, 0403).

radmon stores no direct identifiers (DESIGN section 10). Study keys are pseudonymized on the
way in; everything else a client sends is stored as it passes this gate:

- names and values by shape, wherever they appear: feature names and values (inferences and
  reference uploads), policy feature and segment names, ids (`id_problem`), free text such as
  change-request reasons, decision comments and alert notes (`check_free_text`);
- the policy's allow-list (`FeatureGate`): only declared features are stored, numbers within a
  plausible range, categories as short tokens, optionally from a declared vocabulary;
- numbers that a float cannot hold (`number_problem`).

Reasons name the field and the kind of identifier, never the value: an answer or a log line
must not repeat the PHI it refused. tests/security/phi_corpus.py holds the leaks every path
must refuse and the legitimate radiology metadata every path must accept.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from monitor.errors import Invalid
from monitor.ingest.given_names import GIVEN_NAMES

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


# ---------------------------------------------------------------------------- values by shape

_UP = "A-ZÀ-ÖØ-Þ"
_LO = "a-zß-öø-ÿ"
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_URL = re.compile(r"(?i)\b(?:https?://|ftp://|www\.)\S")
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_DECIMAL = re.compile(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?")
# DICOM person name: family^given[^middle^prefix^suffix] ("DOE^JOHN", "O'Brien^Mary^^Dr").
_PERSON_NAME = re.compile(r"[^\W\d_]+(?:[ '.\-][^\W\d_]*)*\^[^\W\d_]*(?:[ '.\-^][^\W\d_]*)*\^*")
_PERSON_NAME_IN_TEXT = re.compile(r"[^\W\d_][^\W\d_'\-]*(?:\^[^\W\d_'\-]*)+")
_NAME_PARTS = re.compile(r"[\s'.\-^]+")
# Words of study and protocol descriptions that use ^ as a separator ("abdomen^liver",
# "Head^Routine"): a value made only of these is a description, not a person's name.
_DESCRIPTION_WORDS = frozenset(
    """
    abd abdomen adult angio angiography ankle aorta arm arterial axial body bone brain breast cardiac
    cervical chest colon contrast coronary cranial cspine ct cta delayed dental elbow extremity face facial
    femur foot forearm hand head heart hip humerus kidney knee leg limb liver lspine lumbar lung lungs mammo
    mammography mr mra mri neck neuro orbit orbits paediatric pancreas pediatric pelvis perfusion portal
    prostate renal routine sacrum scout shoulder sinus sinuses skull spine stroke thoracic thorax tibia
    trauma tspine urogram venous whole wrist
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
_SSN = re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")
_LABELLED_ID = re.compile(
    r"(?i)(?<![a-z0-9])(?:mrn|pid|acc|accn|accession|patient\s*id|pat\s*id|ssn|nhs|hospital\s*(?:no|number)|"
    r"chart|record|insurance|member)\s*(?:no\.?|nr\.?|number|num|id|#)?\s*[:#=\-]?\s*[A-Z]{0,3}[-\s]?\d{3,}"
    r"(?![0-9a-f])"  # not a piece of a hexadecimal digest ("...4acc335ca...")
)
_LABELLED_BIRTH = re.compile(
    r"(?i)(?<![a-z])(?:dob|d\.o\.b\.?|born(?:\s+on)?|birth\s*date|date\s+of\s+birth|birthday|geb\.?|né|née)"
    r"\s*[:#=\-]?\s*\S*\d"
)
_UID = re.compile(r"(?<![\d.])\d+(?:\.\d+){4,}(?![\d.])")
_STANDARD_UID_ROOT = "1.2.840.10008."
_PHONE_CHARS = re.compile(r"\+?[\d\s()\-/]+")
_PHONE_IN_TEXT = re.compile(r"(?<![\d.])(?:\+\d{1,3}[\s.\-]?)?\(?\d{3}\)?[\s.\-]\d{3}[\s.\-]\d{4}(?![\d.])")
_LOCAL_PHONE = re.compile(r"(?<![\d.\-/])\d{3}-\d{4}(?![\d\-])")
_LONG_DIGITS = re.compile(r"(?<![\d.,])\d{7,}")
_ALPHANUMERIC_TOKEN = re.compile(r"[A-Za-z0-9]*\d{7,}[A-Za-z0-9]*")
_HEX = re.compile(r"[0-9a-f]{16,}|[0-9A-F]{16,}")
_YEAR_MONTH = re.compile(r"(?:19|20)\d{2}-(?:0[1-9]|1[0-2])")  # "2026-11": a month is not an identifier here
_BARE_NUMBER = re.compile(r"[\d\s\-()+/]+")
_ISO_DATE = re.compile(r"(?<![\d.])(1[89]\d{2}|20\d{2})([\-/.])(0?[1-9]|1[0-2])\2(0?[1-9]|[12]\d|3[01])(?![\d.])")
_COMPACT_DATE = re.compile(r"(?<!\d)(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)")
_DMY_DATE = re.compile(r"(?<![\d.])\d{1,2}([\-/.])\d{1,2}\1(1[89]\d{2}|20\d{2})(?![\d.])")
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_WORDY_DATE = re.compile(
    rf"(?i)\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS},?\s+(?:1[89]|20)\d{{2}}|"
    rf"{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:1[89]|20)\d{{2}})\b"
)
_STREET = (
    r"(?i:street|st|road|rd|avenue|ave|lane|ln|drive|boulevard|blvd|way|court|place|terrace|close|crescent|"
    r"highway|hwy|parkway|pkwy|square|circle|trail)"
)
_ADDRESS = re.compile(rf"(?<![\w.])\d{{1,5}}[A-Za-z]?,?\s+(?:[{_UP}][\w'.\-]*\s+){{1,3}}{_STREET}\b")
_ADDRESS_EUROPEAN = re.compile(
    rf"[{_UP}][{_LO}]+(?:straße|strasse|weg|gasse|platz|allee|laan|straat|gatan|vej)\s+\d{{1,4}}[a-z]?\b"
)
_PO_BOX = re.compile(r"(?i)\bp\.?\s*o\.?\s+box\s+\d+")
_POSTCODE_UK = re.compile(r"(?<!\w)[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}(?!\w)")
_POSTCODE_CA = re.compile(r"(?<!\w)[A-Z]\d[A-Z]\s?\d[A-Z]\d(?!\w)")
_STATE_ZIP = re.compile(r"(?<!\w)[A-Z]{2},?\s+\d{5}(?:-\d{4})?(?!\d)")
_HONORIFIC = re.compile(rf"(?<![\w.])(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme|Mlle|Sra?)\.?\s+[{_UP}][{_LO}'\-]+")
_LABELLED_NAME = re.compile(
    rf"(?i:(?<![a-z])(?:patient|pt|name|surname|referrer|referring|physician|doctor|radiologist|operator))"
    rf"\s*[:=]\s*[{_UP}]"
)
_GIVEN_THEN_WORD = re.compile(
    rf"(?<![\w'])(?=([{_UP}][{_LO}]+|[{_UP}]{{2,}})\s+(?:[{_UP}]\.?\s+)?([{_UP}][{_LO}{_UP}'\-]+)(?![\w']))"
)
_WORD_COMMA_GIVEN = re.compile(rf"(?<![\w'])[{_UP}][{_LO}{_UP}'\-]+,\s*([{_UP}][{_LO}]+|[{_UP}]{{2,}})(?![\w'])")
_SAINTS = ("st", "st.", "saint", "san", "santa", "sankt", "ste", "ste.", "são")
# A given name followed by one of these is an institution ("John Hospital"), not a person.
_ORGANISATION_WORDS = frozenset(
    """
    ambulance building campus center centre children childrens clinic clinical clinics college community
    county department foundation general hall health healthcare hospital hospitals imaging infirmary
    institute medical memorial radiology regional school site trust unit university wing
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
_AGE_IN_TEXT = re.compile(
    r"(?i)(?<![\d.])(\d{2,3})\s*-?\s*(?:years?|yrs?|yo|y/o|y\.o\.?|jahre|ans|años)(?:\s*-?\s*old)?(?![a-z])"
)
_AGED = re.compile(r"(?i)(?<![a-z])aged?\s*[:=]?\s*(\d{2,3})(?!\d)")
_AGE_VALUE = re.compile(r"0*(\d{1,3})\s*[Yy]?")
_DICOM_AGE = re.compile(r"(?<![\w.])(\d{3})Y(?!\w)")
# Printable characters that show as nothing: fillers, the combining grapheme joiner, blank braille.
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0\u2800")


def hidden_character(text: str, *, line_breaks: bool = False) -> bool:
    """Whether text holds a control, format (zero-width, bidi), unassigned or invisible character:
    they can hide an identifier from a reader or this guard, and reorder what a screen shows."""
    if text.isascii() and text.isprintable():
        return False
    for character in text:
        if character.isprintable():
            code = ord(character)
            if (
                character in _INVISIBLE
                or 0xFE00 <= code <= 0xFE0F
                or 0x180B <= code <= 0x180F
                or 0xE0100 <= code <= 0xE01EF
            ):
                return True
        elif not (line_breaks and character in "\n\r\t"):
            return True
    return False


@lru_cache(maxsize=8192)
def _given_name(word: str) -> bool:
    """Whether a word is a common given name, accents aside ("José" is "jose")."""
    lowered = word.lower()
    if lowered in GIVEN_NAMES:
        return True
    if lowered.isascii():
        return False
    plain = "".join(c for c in unicodedata.normalize("NFKD", lowered) if not unicodedata.combining(c))
    return plain in GIVEN_NAMES


def _person_name(text: str) -> bool:
    if _HONORIFIC.search(text) or _LABELLED_NAME.search(text):
        return True
    for match in _GIVEN_THEN_WORD.finditer(text):
        given, following = match[1], match[2].lower()
        if not _given_name(given) or following in _ORGANISATION_WORDS:
            continue
        before = text[: match.start()].split()
        if before and before[-1].lower() in _SAINTS:
            continue
        return True
    return any(_given_name(match[1]) for match in _WORD_COMMA_GIVEN.finditer(text))


def _dicom_person_name(text: str, *, free_text: bool) -> bool:
    """FAMILY^GIVEN[^MIDDLE...]; a value made only of description words ("abdomen^liver") is not one."""
    candidates = [match[0] for match in _PERSON_NAME_IN_TEXT.finditer(text)] if free_text else [text.strip()]
    for candidate in candidates:
        if not _PERSON_NAME.fullmatch(candidate):
            continue
        words = [word.lower() for word in _NAME_PARTS.split(candidate) if word]
        if words and all(word in _DESCRIPTION_WORDS for word in words):
            continue
        return True
    return False


def _old_age(text: str) -> bool:
    for pattern in (_AGE_IN_TEXT, _AGED, _DICOM_AGE):
        for match in pattern.finditer(text):
            if 90 <= int(match[1]) <= 150:
                return True
    return False


def _network_address(text: str) -> bool:
    for match in _IPV4.finditer(text):
        if any(len(part) > 1 and part.startswith("0") for part in match.groups()):
            continue  # "51.80.108.010" is a software version: addresses are not zero-padded
        octets = [int(part) for part in match.groups()]
        if max(octets) <= 255 and (len(match[0]) >= 11 or octets[0] in (10, 172, 192)):
            return True
    return False


def _instance_uid(text: str) -> bool:
    return any(len(m[0]) >= 16 and not m[0].startswith(_STANDARD_UID_ROOT) for m in _UID.finditer(text))


def _long_number(text: str) -> bool:
    """A run of 7 or more digits, unless it is part of a hexadecimal digest (a pseudonym, a hash)."""
    if not _LONG_DIGITS.search(text):
        return False
    for match in _ALPHANUMERIC_TOKEN.finditer(text):
        token = match[0]
        if not (_HEX.fullmatch(token) and not token.isdigit()) and _LONG_DIGITS.search(token):
            return True
    return False


def _full_date(text: str) -> bool:
    return bool(
        _ISO_DATE.search(text) or _COMPACT_DATE.search(text) or _DMY_DATE.search(text) or _WORDY_DATE.search(text)
    )


def _scan(text: str, *, free_text: bool) -> str | None:
    """What an identifier in `text` looks like, or None; shared by feature values and free text."""
    if hidden_character(text, line_breaks=free_text):
        return "text with invisible or control characters (they can hide an identifier)"
    if _HEX.search(text):
        # A hexadecimal digest (a pseudonym, a hash) holds digit runs that are no date or number.
        text = _HEX.sub(lambda run: run[0] if run[0].isdigit() else "#", text)
    if "@" in text and _EMAIL.search(text):
        return "an email address"
    if _URL.search(text):
        return "a web address (URL)"
    if "^" in text and _dicom_person_name(text, free_text=free_text):
        return "a DICOM person name (FAMILY^GIVEN)"
    digits = sum(character.isdigit() for character in text)
    if digits >= 3 and not _DECIMAL.fullmatch(text.strip()):  # a measurement written as text passes
        if _SSN.search(text):
            return "a social security number"
        if _LABELLED_BIRTH.search(text):
            return "a birth date"
        if _LABELLED_ID.search(text):
            return "a labelled patient, record or accession number"
        if _instance_uid(text):
            return "a DICOM instance UID"
        if _network_address(text):
            return "a network (IP) address"
        if not free_text and _full_date(text):
            return "a calendar date (dates of birth, admission or exam identify patients; send occurred_at)"
        stripped = text.strip()
        if not free_text and 10 <= digits <= 15 and _PHONE_CHARS.fullmatch(stripped):
            return "a phone number, or a record or accession number"
        if _PHONE_IN_TEXT.search(text) or _LOCAL_PHONE.search(text):
            return "a phone number"
        if _long_number(text):
            return "a long number (record, accession, phone or insurance number)"
        if not free_text and digits >= 5 and _BARE_NUMBER.fullmatch(stripped) and not _YEAR_MONTH.fullmatch(stripped):
            return "a bare number that could be a record number, ZIP code or phone number"
        if _STATE_ZIP.search(text):
            return "a postal address (state and ZIP code)"
    if digits:
        if _ADDRESS.search(text) or _ADDRESS_EUROPEAN.search(text) or _PO_BOX.search(text):
            return "a street address"
        if digits >= 2 and _old_age(text):
            return "an age over 89 (HIPAA Safe Harbor: send an age band such as '90+')"
        if _POSTCODE_UK.search(text) or _POSTCODE_CA.search(text):
            return "a postcode"
    if _person_name(text):
        return "a person's name"
    return None


@lru_cache(maxsize=65536)
def value_problem(value: str) -> str | None:
    """The kind of identifier a feature value (a short token) looks like, or None."""
    if len(value) < 3:
        return (
            "text with invisible or control characters (they can hide an identifier)"
            if (hidden_character(value))
            else None
        )
    return _scan(value, free_text=False)


def text_problem(text: str) -> str | None:
    """The kind of identifier a free text (reason, comment, note) holds, or None. Dates and
    short numbers pass (a note says when and which alert); labelled birth dates do not."""
    return _scan(text, free_text=True)


# In an id: a social security number, or a medical record or accession number or a birth date
# with its label ("MRN12345678-ct", "acc-00001234"); "record-0001" is an ordinary client key.
# A cheap first look (most ids are UUIDs or counters): a label, in lower case (a case-insensitive
# pattern costs ten times as much).
_ID_LABEL_HINT = re.compile(r"mrn|acc|ssn|nhs|pat|dob|d\.o\.b|born|birth|geb|né")
_SPELLED_OUT_ID = re.compile(
    rf"{_SSN.pattern}|(?<![a-z0-9])(?:mrn|accession|accn|acc|ssn|nhs|patient\s*id|pat\s*id)\s*(?:no\.?|number|#)?"
    rf"\s*[:#=\-_]?\s*[a-z]{{0,3}}[\-\s_]?\d{{3,}}(?![0-9a-f])|{_LABELLED_BIRTH.pattern[4:]}",
    re.IGNORECASE,
)


def id_problem(value: str) -> str | None:
    """What is wrong with an id (model, version, inference_id) by shape, or None: invisible or
    bidi characters, or an identifier spelled out (an email, a DICOM name, a labelled MRN or
    birth date, a social security number). Bare numbers, UUIDs and dates pass: they are the
    usual opaque keys. Runs for every record: one regular expression in the usual case."""
    if not (value.isascii() and value.isprintable()) and hidden_character(value):
        return "text with invisible or control characters"
    if "@" in value and _EMAIL.search(value):
        return "an email address"
    if "^" in value and _PERSON_NAME_IN_TEXT.search(value):
        return "a DICOM person name (FAMILY^GIVEN)"
    if (_ID_LABEL_HINT.search(value.lower()) or _SSN.search(value)) and _SPELLED_OUT_ID.search(value):
        return "a labelled patient identifier"
    return None


def check_free_text(*, field: str, value: str | None, record: str | None = None) -> None:
    """Refuse (Invalid, 422) a free text that looks like it holds PHI, before anything is stored.

    Reasons, comments and notes land in the append-only audit trail, where they can never be
    purged. The message names the record and field and the kind of identifier, never the text."""
    if not value:
        return
    looks_like = text_problem(value)
    if looks_like is None:
        return
    where = f"{record}: {field}" if record else field
    raise Invalid(
        f"{where} looks like it holds {looks_like}; {ADVICE}: describe the issue without patient details "
        "(refer to a study by its pseudonymized key or the alert number)",
        details={"field": field, "record": record, "kind": looks_like},
    )


# ---------------------------------------------------------------------------- numbers

# Integers beyond this lose digits as the float radmon stores.
MAX_EXACT_INTEGER = 2**53
# The plausible range of a numeric feature unless the policy declares one (min/max): wide enough
# for kVp, mAs, dose, pixel counts and HU, narrow enough to refuse a 7-digit record number.
NUMERIC_BOUND = 1_000_000.0


def number_problem(value: float) -> str | None:
    """Why a number cannot be stored faithfully, or None."""
    if value.__class__ is int and not -MAX_EXACT_INTEGER <= value <= MAX_EXACT_INTEGER:  # type: ignore[operator]
        return f"an integer beyond 2^53 loses digits when stored; got one of {len(str(abs(value)))} digits"
    if value.__class__ is float and not math.isfinite(value):
        return "not a finite number"
    return None


# ---------------------------------------------------------------------------- feature records


def feature_problem(key: str, value: object) -> str | None:
    """A readable reason why one feature may not be stored, or None when it may."""
    found = features_problem({key: value})
    return found[1] if found else None


def features_problem(features: Mapping[str, object]) -> tuple[str, str] | None:
    """(field, reason) for the first feature that may not be stored, or None (names and values
    by shape, whatever the policy; the policy's allow-list is FeatureGate)."""
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


def _age_over_89(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value) and value >= 90
    if isinstance(value, str):
        match = _AGE_VALUE.fullmatch(value.strip())
        return match is not None and int(match[1]) >= 90
    return False


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
        reason = name_problem(key)
        if reason is not None:
            return NamesVerdict((f"features.{_shown_name(key)}", f"features.{reason}"), ())
    return NamesVerdict(None, tuple(key for key in keys if _is_age_key(key)))


def name_problem(name: str) -> str | None:
    """Why a feature or segment name may not be used ("<name> looks like ..."), or None. A name
    that is itself an identifier-like value ("DOE^JOHN") is not repeated."""
    kind = key_problem(name)
    if kind is not None:
        return f"{name} looks like an identifier ({kind}); {ADVICE}"
    looks_like = value_problem(name)
    if looks_like is not None:
        return f"{_shown_name(name)} is a name that looks like {looks_like}; {ADVICE}"
    return None


def _shown_name(name: str) -> str:
    return name if key_problem(name) is not None or value_problem(name) is None else "(name withheld)"


_AGE_KEY_TOKENS = frozenset(["age", "ages", "yrs", "years", "yo", "aged"])


@lru_cache(maxsize=4096)
def _is_age_key(key: str) -> bool:
    words = set(normalize_key(key))
    return bool(words & _AGE_KEY_TOKENS) and not words & _AGE_BAND_TOKENS


# ---------------------------------------------------------------------------- the policy's allow-list

MAX_TOKEN_LENGTH = 64  # a DICOM LO value; longer text is free text, which features never hold


def token_problem(value: str) -> str | None:
    """Why a string is not a short categorical token (bounded length and alphabet), or None."""
    if len(value) > MAX_TOKEN_LENGTH:
        return f"must be a short categorical value of at most {MAX_TOKEN_LENGTH} characters; free text is not stored"
    if value.isspace():
        return "must not be blank"
    return None


@dataclass(frozen=True, slots=True)
class Declared:
    """One feature or segment the policy declares."""

    numeric: bool
    low: float
    high: float
    vocabulary: frozenset[str] | None


class FeatureGate:
    """The policy's allow-list for one model: which features are stored, and what each may hold.

    A policy that declares no features and no segments (or no policy yet) has no allow-list:
    every name and value is then judged by shape only (the deny-list of decision 0401) and
    numbers by the default plausible range."""

    __slots__ = ("bounds", "declared", "reject_undeclared", "tokens")

    def __init__(self, declared: dict[str, Declared] | None, *, reject_undeclared: bool = False) -> None:
        self.declared = declared
        self.reject_undeclared = reject_undeclared
        # The two usual kinds, looked up directly: a numeric feature's range, and the categorical
        # features that take any short token.
        specs = (declared or {}).items()
        self.bounds = {name: (spec.low, spec.high) for name, spec in specs if spec.numeric}
        self.tokens = frozenset(name for name, spec in specs if not spec.numeric and spec.vocabulary is None)

    def apply(self, features: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | tuple[str, str]:
        """(features to store, undeclared names dropped), or (field, reason) when the record is refused."""
        declared = self.declared
        if declared is None:
            for name, value in features.items():
                problem = _number_out_of(name, value, -NUMERIC_BOUND, NUMERIC_BOUND)
                if problem is not None:
                    return problem
            return features, []
        bounds, tokens = self.bounds, self.tokens
        for name, value in features.items():
            # The usual values first, inline: this runs for every feature of every record.
            cls = value.__class__
            if cls is float or cls is int:
                span = bounds.get(name)
                if span is not None and span[0] <= value <= span[1]:
                    continue
            elif cls is str and name in tokens and len(value) <= MAX_TOKEN_LENGTH and not value.isspace():
                continue
            spec = declared.get(name)
            if spec is None or value is None:
                continue
            problem = _declared_problem(name, value, spec)
            if problem is not None:
                return problem
        if features.keys() <= declared.keys():
            return features, []
        undeclared = [name for name in features if name not in declared]
        if self.reject_undeclared:
            shown = _shown_name(undeclared[0])
            return f"features.{shown}", (
                f"features.{shown} is not declared in the model's monitoring policy, "
                "which refuses undeclared features; declare it or stop sending it"
            )
        kept = {name: value for name, value in features.items() if name in declared}
        return kept, [_shown_name(name) for name in undeclared]

    def value_reason(self, name: str, value: Any) -> str | None:
        """Why one value of a feature may not be stored (by shape, by age, then by what the policy
        declares for it), or None: the reference uploads' check of each cell."""
        if value is None:
            return None
        if value.__class__ is str:
            looks_like = value_problem(value)
            if looks_like is not None:
                return value_reason(name, looks_like)[1]
        if _is_age_key(name) and _age_over_89(value):
            found = age_problem({name: value}, (name,))
            return None if found is None else found[1]
        spec = None if self.declared is None else self.declared.get(name)
        if spec is None:
            problem = _number_out_of(name, value, -NUMERIC_BOUND, NUMERIC_BOUND)
        else:
            problem = _declared_problem(name, value, spec)
        return None if problem is None else problem[1]


def _number_out_of(name: str, value: Any, low: float, high: float) -> tuple[str, str] | None:
    cls = value.__class__
    if cls is list:
        return next((p for item in value if (p := _number_out_of(name, item, low, high)) is not None), None)
    if (cls is int or cls is float) and not low <= value <= high:
        return f"features.{name}", (
            f"features.{name} is outside its plausible range {low:g} to {high:g} (a value this large is more "
            "likely an identifier than a measurement); declare min/max for the feature in the policy if it is real"
        )
    return None


def _declared_problem(name: str, value: Any, spec: Declared) -> tuple[str, str] | None:
    if value is None:
        return None
    cls = value.__class__
    field = f"features.{name}"
    if spec.numeric:
        if cls is not int and cls is not float:
            kind = "a boolean (booleans are not numbers)" if cls is bool else _kind_of(value)
            return field, f"{field} is declared numeric and must be a number; got {kind}"
        return _number_out_of(name, value, spec.low, spec.high)
    items = value if cls is list else (value,)
    for item in items:
        if item.__class__ is str:
            problem = token_problem(item)
            if problem is not None:
                return field, f"{field} {problem}"
            if spec.vocabulary is not None and item not in spec.vocabulary:
                return field, f"{field} is not one of the values the policy declares for it"
        elif spec.vocabulary is not None and item is not None:
            return field, f"{field} is not one of the values the policy declares for it"
    return None


def _kind_of(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(value.__class__, value.__class__.__name__)


@lru_cache(maxsize=256)
def _gate_for(policy_json: bytes) -> FeatureGate:
    body = orjson.loads(policy_json)
    features = body.get("features") or []
    segments = body.get("segments") or []
    if not features and not segments:
        return FeatureGate(None)
    declared: dict[str, Declared] = {}
    for spec in features:
        numeric = spec.get("type") == "numeric"
        low = spec.get("min")
        high = spec.get("max")
        values = spec.get("values")
        declared[spec["name"]] = Declared(
            numeric,
            -NUMERIC_BOUND if low is None else float(low),
            NUMERIC_BOUND if high is None else float(high),
            None if values is None else frozenset(values),
        )
    for segment in segments:
        declared.setdefault(segment, Declared(False, -NUMERIC_BOUND, NUMERIC_BOUND, None))
    return FeatureGate(declared, reject_undeclared=body.get("undeclared_features") == "reject")


def gate_for(policy: Any) -> FeatureGate:
    """The allow-list of a MonitoringPolicy."""
    return gate_for_body(policy.model_dump(mode="json", include=set(_GATE_FIELDS)))


def gate_for_body(body: Mapping[str, Any] | None) -> FeatureGate:
    """The allow-list of a stored policy body (None: no policy yet), cached per content."""
    if body is None:
        return _NO_ALLOW_LIST
    relevant = {name: body.get(name) for name in _GATE_FIELDS}
    return _gate_for(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS))


_GATE_FIELDS = ("features", "segments", "undeclared_features")
_NO_ALLOW_LIST = FeatureGate(None)


def policy_name_problem(name: str, *, what: str) -> str | None:
    """Why a policy may not declare this feature or segment name, or None."""
    reason = name_problem(name)
    return None if reason is None else f"{what} {reason}"


def vocabulary_problem(values: list[str]) -> str | None:
    """Why a declared vocabulary is unusable (a value that is not a token, or looks like PHI), or None."""
    for value in values:
        problem = token_problem(value)
        if problem is not None:
            return f"a declared value {problem}"
        looks_like = value_problem(value)
        if looks_like is not None:
            return f"a declared value looks like {looks_like}; {ADVICE}"
    return None
