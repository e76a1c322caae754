"""Scanner profiles per site, seeded from real CT headers in pydicom-data."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import lru_cache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScannerProfile:
    """What a scanner writes in its header, and how its images measure (the hidden physics)."""

    manufacturer: str
    scanner_model: str
    kernel: str
    kvp: int
    slice_thickness: float
    hu_bias: float = 0.0  # calibration offset of parenchyma and blood, HU
    noise_base: float = 3.5  # image noise SD at 120 kVp and 5 mm, HU
    ctdi_ref: float = 52.0  # CTDIvol of the head protocol at 120 kVp, mGy


SITES = ("north", "south", "east", "west")
SITE_WEIGHTS = (0.30, 0.25, 0.25, 0.20)

# The fallback table carries the same header values as the DICOM files it stands in for, so a
# run is identical with or without pydicom-data installed; only the physics is invented.
BUILTIN_PROFILES = {
    "north": ScannerProfile("GE MEDICAL SYSTEMS", "RHAPSODE", "STANDARD", 120, 5.0, 0.0, 3.6, 55.0),
    "south": ScannerProfile("SIEMENS", "SOMATOM Definition AS+", "B30s", 120, 1.0, 1.0, 3.0, 50.0),
    "east": ScannerProfile("Philips", "Brilliance 64", "UB", 120, 3.0, -1.0, 3.7, 48.0),
    "west": ScannerProfile("CANON_MEC", "Aquilion ONE", "FC21", 120, 5.0, 0.5, 3.4, 52.0),
}
DICOM_SOURCES = {"north": "CT_small.dcm", "south": "bad_sequence.dcm"}

# What a site typically installs next, per manufacturer: the default of a scanner change.
SUCCESSORS = {
    "GE MEDICAL SYSTEMS": ("Revolution CT", "SOFT"),
    "SIEMENS": ("SOMATOM go.Top", "Hr38"),
    "Philips": ("Incisive CT", "UB"),
    "CANON_MEC": ("Aquilion Prime SP", "FC26"),
}


def header_profile(filename: str, fallback: ScannerProfile) -> ScannerProfile:
    """The fallback with its header attributes replaced by those of a pydicom-data CT file."""
    try:
        import pydicom
        from pydicom.data import get_testdata_file

        # get_testdata_files() (plural) tries the network; the singular form stays local.
        path = get_testdata_file(filename)
        if path is None:
            return fallback
        header = pydicom.dcmread(path, stop_before_pixels=True)
        values = {
            "manufacturer": str(header.get("Manufacturer", "") or "").strip(),
            "scanner_model": str(header.get("ManufacturerModelName", "") or "").strip(),
            "kernel": str(header.get("ConvolutionKernel", "") or "").strip(),
            "kvp": int(float(header.get("KVP") or 0)),
            "slice_thickness": float(header.get("SliceThickness") or 0),
        }
    except Exception as exc:  # a broken test asset must never stop the simulator
        log.warning("could not read %s (%s); using the built-in profile", filename, exc)
        return fallback
    if header.get("Modality") != "CT" or not all(values.values()):
        return fallback
    return replace(fallback, **values)  # type: ignore[arg-type]  # each value has its field's type


@lru_cache(maxsize=1)
def site_profiles() -> dict[str, ScannerProfile]:
    """One baseline scanner per site, header attributes from DICOM where a CT file exists."""
    profiles = dict(BUILTIN_PROFILES)
    for site, filename in DICOM_SOURCES.items():
        profiles[site] = header_profile(filename, BUILTIN_PROFILES[site])
    return profiles
