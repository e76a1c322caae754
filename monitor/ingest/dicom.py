"""DICOM header to inference features: an allow-list, pseudonymized site identifiers, no more."""

from __future__ import annotations

import io
import math
import os
import re
import struct
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.multival import MultiValue

from monitor.errors import ConfigurationError, Invalid
from monitor.ingest.pseudonym import pseudonymize

DicomSource = str | os.PathLike[str] | bytes | BinaryIO | Dataset

# The allow-list (DESIGN section 10). A header element absent from these tables never reaches
# the features, whatever it holds; adding one is a privacy decision, not a refactoring.
TEXT_FEATURES = {
    "Manufacturer": "manufacturer",
    "ManufacturerModelName": "manufacturer_model_name",
    "SoftwareVersions": "software_versions",
    "ConvolutionKernel": "convolution_kernel",
}
CODE_FEATURES = {  # CS elements: upper case by the standard, so case differences are noise
    "Modality": "modality",
    "BodyPartExamined": "body_part_examined",
    "ViewPosition": "view_position",
}
MEASURE_FEATURES = {"KVP": "kvp", "Exposure": "exposure", "SliceThickness": "slice_thickness"}
COUNT_FEATURES = {"Rows": "rows", "Columns": "columns"}
PSEUDONYMIZED_FEATURES = {  # keyword -> (feature, pseudonym kind)
    "InstitutionName": ("institution", "institution"),
    "StationName": ("station", "station"),
    "DeviceSerialNumber": ("device_serial", "device"),
}
FEATURE_NAMES = frozenset(
    [*TEXT_FEATURES.values(), *CODE_FEATURES.values(), *MEASURE_FEATURES.values()]
    + [*COUNT_FEATURES.values(), "pixel_spacing_mm", "pixel_spacing_col_mm"]
    + ["patient_sex", "age_band"]
    + [feature for feature, _ in PSEUDONYMIZED_FEATURES.values()]
)

PATIENT_SEXES = frozenset({"M", "F", "O"})
# DICOM's value separator cannot occur inside a value, so joining with it is unambiguous.
MULTI_VALUE_SEPARATOR = "\\"

_AGE = re.compile(r"(\d{1,3})\s*([DWMY])")
_YEARS_PER_UNIT = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1}
# Errors pydicom raises while converting one element's raw bytes (truncated or malformed value).
_VALUE_ERRORS = (ValueError, struct.error, BytesLengthException)


def features_from_dicom(source: DicomSource, *, pseudonym_key: str) -> dict[str, object]:
    """Inference features from a DICOM header; tags outside the allow-list are dropped."""
    if not pseudonym_key:
        raise ConfigurationError("a pseudonym key is required for DICOM site identifiers")
    header = read_header(source)
    features: dict[str, object] = {}
    for keyword, feature in CODE_FEATURES.items():
        features[feature] = _code(_value(header, keyword))
    for keyword, feature in TEXT_FEATURES.items():
        features[feature] = _text(_value(header, keyword))
    for keyword, feature in MEASURE_FEATURES.items():
        features[feature] = _measure(_value(header, keyword))
    features.update(_pixel_spacing(_value(header, "PixelSpacing")))
    for keyword, feature in COUNT_FEATURES.items():
        features[feature] = _count(_value(header, keyword))
    sex = _code(_value(header, "PatientSex"))
    features["patient_sex"] = sex if sex in PATIENT_SEXES else None
    features["age_band"] = age_band(_value(header, "PatientAge"))
    for keyword, (feature, kind) in PSEUDONYMIZED_FEATURES.items():
        identifier = _text(_value(header, keyword))
        if identifier is not None:
            features[feature] = pseudonymize(identifier, key=pseudonym_key, kind=kind)
    return {name: value for name, value in features.items() if value is not None}


def read_header(source: DicomSource) -> Dataset:
    """The header of a DICOM file (path, bytes or binary file), read without its pixel data."""
    if isinstance(source, Dataset):
        header = source
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = io.BytesIO(source)
        try:
            header = pydicom.dcmread(source, stop_before_pixels=True)
        except InvalidDicomError as exc:
            raise Invalid("not a DICOM file: no 'DICM' marker after the 128-byte preamble") from exc
        except OSError as exc:
            # strerror, not str(exc): file names can carry patient names.
            raise Invalid(f"cannot read the DICOM file: {exc.strerror or 'I/O error'}") from exc
        except (EOFError, *_VALUE_ERRORS) as exc:
            raise Invalid("the DICOM header is truncated or damaged") from exc
    if len(header) == 0:
        raise Invalid("the DICOM file has no data elements (truncated after its file meta header?)")
    return header


def age_band(patient_age: object) -> str | None:
    """Ten-year band ("60-69") of a DICOM age string ("063Y"); 90 and over are one band."""
    if not isinstance(patient_age, str):
        return None
    match = _AGE.fullmatch(patient_age.strip().upper())
    if match is None:
        return None
    years = int(match[1]) * _YEARS_PER_UNIT[match[2]]
    # HIPAA Safe Harbor: ages over 89 are identifying and must be aggregated.
    if years >= 90:
        return "90+"
    low = int(years) // 10 * 10
    return f"{low}-{low + 9}"


def _value(header: Dataset, keyword: str) -> object:
    # Only allow-listed elements are ever converted here, so pydicom's validation warnings (which
    # quote invalid values) cannot quote a PHI element; for LO/SH they quote only lengths.
    try:
        return header.get(keyword)
    except _VALUE_ERRORS:
        return None  # an undecodable value is as good as a missing one


def _text(value: object) -> str | None:
    parts = value if isinstance(value, (MultiValue, list, tuple)) else [value]
    cleaned = [str(part).strip() for part in parts if isinstance(part, (str, int, float))]
    return MULTI_VALUE_SEPARATOR.join(part for part in cleaned if part) or None


def _code(value: object) -> str | None:
    text = _text(value)
    return text.upper() if text is not None else None


def _measure(value: object) -> float | None:
    # kVp, mAs, millimetres and pixel counts are positive; 0 is how devices write "not recorded".
    if isinstance(value, (MultiValue, list, tuple, bool)) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # DSfloat, ISfloat, int, or the raw str pydicom keeps when invalid
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _count(value: object) -> int | None:
    number = _measure(value)
    return int(number) if number is not None and number.is_integer() else None


def _pixel_spacing(value: object) -> dict[str, float]:
    # PixelSpacing is (row spacing, column spacing); with either half missing it is not a spacing.
    if not isinstance(value, (MultiValue, list, tuple)) or len(value) != 2:
        return {}
    row, column = _measure(value[0]), _measure(value[1])
    if row is None or column is None:
        return {}
    return {"pixel_spacing_mm": row, "pixel_spacing_col_mm": column}
