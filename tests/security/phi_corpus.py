"""The PHI corpus: realistic leaks that every entry path must refuse, and legitimate radiology
metadata that every path must accept (decision 0403).

Leaks are (feature name, value) for the feature paths (inferences, reference uploads), ids for
the id fields, names for the policy, and texts for the free-text fields. Legitimate values come
from real scanners' metadata: a fixed list of vendor, model, protocol, kernel and body-part names
seen in practice, and the values of the DICOM files that ship with pydicom (read one by one with
pydicom.data.get_testdata_file). Identifying DICOM attributes (names, ids, dates, institution and
station names, serial numbers) are not taken from those files: radmon pseudonymizes them
(monitor.ingest.dicom) and the pseudonyms are in the list instead.
"""

from __future__ import annotations

from typing import Any

from monitor.ingest.pseudonym import pseudonymize

# ---------------------------------------------------------------------------- leaks

# (feature name, value): identifiers by name, and by value under neutral names.
FEATURE_LEAKS: list[tuple[str, Any]] = [
    # names
    ("referrer", "DOE^JOHN"),
    ("operator", "Smith^Jane"),
    ("who", "Lestrade^G"),
    ("who", "O'Brien^Mary^^Dr"),
    ("series_note", "Sssssss^Jsssss"),
    ("referrer", "John Smith"),
    ("operator", "JANE DOE"),
    ("reader", "Wei Chen"),
    ("who", "José García"),
    ("requester", "Smith, John"),
    ("finding_context", "Patient: John Smith"),
    ("context", "pt Smith seen by Dr. House"),
    ("signed_by", "Dr Okafor"),
    ("who", "Mrs. García"),
    ("who", "Mr Jones"),
    ("names", ["ok", "DOE^JANE"]),
    # record, accession, insurance and national numbers
    ("ref", "1234567"),
    ("record", "MRN 00123456"),
    ("tag", "MRN: 12345678"),
    ("context", "CT head, acc 12345678"),
    ("context", "follow-up of ACC#A1234567"),
    ("context", "prior study 8000000000330109"),
    ("plan", "Member ID 88441234"),
    ("code", "123456789"),
    ("code", "123-45-6789"),
    ("ref", "943 476 5919"),
    ("ref_no", 1234567),
    ("ref_no", 123456789012345678901234567890),
    ("study", "1.2.840.113619.2.55.3.604688119.969.1268071029.320"),
    # dates of birth (and other dates of a patient)
    ("d1", "1961-04-02"),
    ("d2", "19610402"),
    ("d3", "04/02/1961"),
    ("d4", "2 April 1961"),
    ("context", "DOB: 02/04/1961"),
    ("context", "born 1961-04-02"),
    # ages over 89
    ("yrs", 93),
    ("age_years", "093Y"),
    ("info", "93-year-old female"),
    ("age", 91.5),
    # contact details and addresses
    ("contact", "jane.doe@hospital.example"),
    ("contact", "(617) 555-0142"),
    ("contact", "+44 20 7946 0958"),
    ("contact", "617.555.0142"),
    ("contact", "555-0142"),
    ("where", "12 Main Street"),
    ("where", "221B Baker Street"),
    ("loc", "Hauptstraße 5"),
    ("loc", "PO Box 1234"),
    ("area", "SW1A 1AA"),
    ("area", "K1A 0B1"),
    ("area", "02139"),
    ("area", "Boston, MA 02115"),
    ("link", "https://pacs.hospital.example/viewer?study=123"),
    ("host", "192.168.10.23"),
    # identifiers hidden from a reader or a pattern
    ("hidden", "DOE\u200b^JOHN"),
    ("hidden", "\u202eNHOJ^EOD"),
    # identifying names
    ("patient_name", "anonymous"),
    ("PatientBirthDate", "x"),
    ("(0010,0020)", "x"),
    ("mrn", 1234567),
    ("AccessionNumber", "x"),
    ("referring_physician_name", "x"),
    ("home_address", "x"),
]

# Ids that spell an identifier out or hide characters (inference_id, study_key, model, version).
ID_LEAKS: list[tuple[str, str]] = [
    ("inference_id", "jane.doe@hospital.example-ct"),
    ("inference_id", "DOE^JOHN-0001"),
    ("inference_id", "MRN 12345678 head"),
    ("inference_id", "inf-\u200b0001"),
    ("inference_id", "inf-\u202e1000"),
    ("inference_id", "inf\u3164001"),
    ("study_key", "ACC\u200b12345678"),
    ("study_key", "ACC12345678\u2066"),
]

# Feature and segment names a policy must not declare.
POLICY_NAME_LEAKS: list[str] = [
    "patient_name",
    "mrn",
    "PatientBirthDate",
    "PatientID",
    "accession_number",
    "referring_physician_name",
    "home_address",
    "DOE^JOHN",
]

# Free texts (change-request reasons, decision comments, alert notes) that hold PHI.
TEXT_LEAKS: list[str] = [
    "Roll back: missed bleed in DOE^JOHN's head CT",
    "Missed ICH for patient John Smith on the night shift",
    "False negative, MRN 00123456, see PACS",
    "Acc 12345678 was read as normal; radiologist disagreed",
    "Call the patient's daughter on (617) 555-0142",
    "Patient: Garcia, 93-year-old, fell at home",
    "Pt DOB: 02/04/1961, scan repeated",
    "Sent to jane.doe@hospital.example for review",
    "Lives at 12 Main Street, scanner CT2",
    "Case 1.2.840.113619.2.55.3.604688119.969.1268071029.320 missed",
    "SSN 123-45-6789 on the requisition",
    "Discussed with Mrs. Okafor",
    "hidden\u202e text",
    "NHS no 943 476 5919 in the worklist",
]

# ---------------------------------------------------------------------------- legitimate values

# A monitoring policy that declares every feature the legitimate corpus uses.
LEGIT_POLICY: dict[str, Any] = {
    "features": [
        {"name": "manufacturer", "type": "categorical"},
        {"name": "model_name", "type": "categorical"},
        {"name": "protocol", "type": "categorical"},
        {"name": "kernel", "type": "categorical"},
        {"name": "body_part", "type": "categorical"},
        {"name": "institution", "type": "categorical"},
        {"name": "station", "type": "categorical"},
        {"name": "software", "type": "categorical"},
        {"name": "modality", "type": "categorical"},
        {"name": "dicom_value", "type": "categorical"},
        {"name": "age_band", "type": "categorical"},
        {"name": "patient_sex", "type": "categorical"},
        {"name": "site", "type": "categorical"},
        {"name": "kvp", "type": "numeric"},
        {"name": "slice_thickness", "type": "numeric"},
        {"name": "exposure_uas", "type": "numeric", "max": 10_000_000},
        {"name": "age", "type": "numeric"},
        {"name": "contrast", "type": "categorical"},
    ],
    "segments": ["site", "manufacturer"],
}

_VENDORS = [
    "GE MEDICAL SYSTEMS",
    "GE Healthcare",
    "G.E. Medical Systems",
    "SIEMENS",
    "Siemens Healthineers",
    "Philips",
    "Philips Medical Systems",
    "Philips Healthcare",
    "TOSHIBA",
    "CANON_MEC",
    "Canon Medical Systems",
    "FUJIFILM Corporation",
    "Fujifilm",
    "Agfa",
    "Carestream Health",
    "KODAK",
    "Konica Minolta",
    "Hologic, Inc.",
    "Samsung Electronics",
    "SHIMADZU Corporation",
    "Hitachi Medical Corporation",
    "United Imaging Healthcare",
    "Neusoft Medical Systems",
    "Planmeca",
    "Sectra",
    "iCAD",
    "Lunit",
    "Varian Medical Systems",
]
_MODELS = [
    "Revolution CT",
    "Revolution EVO",
    "Revolution Apex",
    "Revolution Maxima",
    "LightSpeed VCT",
    "LightSpeed16",
    "Optima CT660",
    "Discovery CT750 HD",
    "Discovery MR750",
    "SIGNA Premier",
    "Signa HDxt",
    "SIGNA Artist",
    "SIGNA Pioneer",
    "SIGNA Explorer",
    "Senographe Pristina",
    "Senographe Essential",
    "Definium 656",
    "Optima XR240amx",
    "SOMATOM Force",
    "SOMATOM Definition AS+",
    "SOMATOM Definition Edge",
    "SOMATOM go.Top",
    "SOMATOM Emotion 16",
    "NAEOTOM Alpha",
    "MAGNETOM Vida",
    "MAGNETOM Skyra",
    "MAGNETOM Prisma",
    "MAGNETOM Sola",
    "MAGNETOM Aera",
    "MAGNETOM Avanto",
    "MAGNETOM Amira",
    "Avanto",
    "MAMMOMAT Revelation",
    "Ysio Max",
    "Luminos dRF Max",
    "Multix Fusion Max",
    "Mobilett Elara Max",
    "Aquilion ONE",
    "Aquilion Prime SP",
    "Aquilion Lightning",
    "Vantage Orian",
    "Vantage Galan 3T",
    "Ingenuity CT",
    "Brilliance 64",
    "iCT 256",
    "IQon Spectral CT",
    "Ingenia Elition X",
    "Ingenia Ambition",
    "Achieva dStream",
    "DigitalDiagnost C90",
    "Selenia Dimensions",
    "3Dimensions",
    "DRX-Evolution Plus",
    "DRX-Revolution",
    "FDR D-EVO II",
    "AeroDR",
    "GM85",
    "uCT 760",
    "uMR 780",
    "MILLENNIUM MG",
    "LOGIQ E10",
    "Voluson E10",
    "EPIQ 7G",
    "Aplio i800",
    "RHAPSODE",
    "Lunit INSIGHT CXR",
]
_PROTOCOLS = [
    "HEAD ROUTINE",
    "Head Routine 5mm",
    "CT HEAD WO CONTRAST",
    "CTA HEAD NECK",
    "Stroke Protocol",
    "CHEST ROUTINE",
    "Chest PE",
    "Thorax^01_Routine",
    "abdomen^liver",
    "ABD PELVIS W CONTRAST",
    "t1_vibe_fs_tra_bh_dyn",
    "t2_tse_tra",
    "AX T2 FLAIR",
    "SAG T1 MPRAGE",
    "DWI b1000",
    "ep2d_diff_3scan",
    "BRAIN ROUTINE 3T",
    "Whole Body Bone",
    "LUNG SCREENING LDCT",
    "AX 5mm STND",
    "5/5mm Plain",
    "COR 3mm BONE",
    "PA CHEST",
    "L-CC",
    "R-MLO",
    "Tomo R MLO",
    "KNEE RIGHT",
    "C-SPINE TRAUMA",
    "Renal stone low dose",
    "Pediatric head",
]
_KERNELS = [
    "STANDARD",
    "SOFT",
    "BONE",
    "BONEPLUS",
    "LUNG",
    "DETAIL",
    "CHEST",
    "Br40d",
    "Br64f",
    "Hr38h",
    "Qr40",
    "Bv40",
    "I30f",
    "B30f",
    "B70f",
    "H31s",
    "FC03",
    "FC13",
    "FC51",
    "FC86",
    "YA",
    "YC",
    "B",
    "L",
    "UB",
]
_BODY_PARTS = [
    "HEAD",
    "BRAIN",
    "NECK",
    "CHEST",
    "THORAX",
    "LUNG",
    "ABDOMEN",
    "PELVIS",
    "ABDOMENPELVIS",
    "CSPINE",
    "TSPINE",
    "LSPINE",
    "BREAST",
    "KNEE",
    "SHOULDER",
    "HAND",
    "FOOT",
    "HIP",
    "WHOLEBODY",
    "WHOLE BODY",
    "HEART",
    "EXTREMITY",
    "SKULL",
]
_SOFTWARE = [
    "syngo CT VA48A",
    "syngo MR XA20",
    "syngo MR E11",
    "syngo MR 2004V 4VB11D",
    "VB10A",
    "gmp_vct.42",
    "LightSpeedverrel",
    "27\\LX\\MR Software release:DV26.0_R03_1831.b",
    "V3.51*P25",
    "coreload.81",
    "4.1.2",
    "R6.1",
    "CX50_210",
    "51.80.108.010",
    "2.6.3.6",
    "DRX 5.7",
    "Ingenia 5.7.1",
]
_OTHER = (
    [("modality", m) for m in ("CT", "MR", "CR", "DX", "MG", "US", "NM", "PT", "XA", "RF", "OT", "SEG", "SR")]
    + [("age_band", band) for band in ("0-17", "18-39", "40-59", "60-69", "70-79", "80-89", "90+")]
    + [("patient_sex", sex) for sex in ("F", "M", "O")]
    + [("site", site) for site in ("north", "south", "east", "west", "main-campus", "satellite-2", "ED", "Site B")]
    + [
        ("kvp", 80),
        ("kvp", 100),
        ("kvp", 120),
        ("kvp", 140.0),
        ("slice_thickness", 0.625),
        ("slice_thickness", 5.0),
        ("exposure_uas", 2_500_000),
        ("age", 67),
        ("age", 89),
        ("contrast", True),
        ("contrast", False),
        ("contrast", "ISOVUE300/100"),
        ("contrast", "11 ml Omniscan"),
        ("contrast", "Omnipaque 350"),
    ]
)
_PSEUDONYMS = [
    ("institution", pseudonymize(name, key="corpus", kind="institution"))
    for name in ("St Mary's General Hospital", "JFK IMAGING CENTER", "AKH - WIEN", "BAPTIST MED CTR", "Here")
] + [
    ("station", pseudonymize(name, key="corpus", kind="station"))
    for name in ("CT01_OC0", "MRC25641", "genieacq", "000000000", "COMPUTER002")
]

# DICOM attributes of pydicom's test files taken as feature values (none identifies anyone).
DICOM_ATTRIBUTES = (
    "Manufacturer",
    "ManufacturerModelName",
    "SoftwareVersions",
    "BodyPartExamined",
    "ProtocolName",
    "SeriesDescription",
    "StudyDescription",
    "ConvolutionKernel",
    "Modality",
    "ScanningSequence",
    "SequenceVariant",
    "ScanOptions",
    "MRAcquisitionType",
    "SequenceName",
    "ImageType",
    "PatientPosition",
    "PhotometricInterpretation",
    "SOPClassUID",
    "ViewPosition",
    "KVP",
    "SliceThickness",
    "PatientSex",
    "InstitutionalDepartmentName",
    "ImagedNucleus",
    "TransmitCoilName",
    "ContrastBolusAgent",
    "FilterType",
    "RotationDirection",
    "ExposureTime",
    "XRayTubeCurrent",
    "Exposure",
    "Rows",
    "Columns",
    "BitsStored",
    "MagneticFieldStrength",
    "EchoTime",
    "RepetitionTime",
    "FlipAngle",
    "PixelSpacing",
    "DistanceSourceToDetector",
    "ReconstructionDiameter",
    "SpacingBetweenSlices",
    "SeriesNumber",
    "SamplesPerPixel",
    "Laterality",
)
DICOM_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "JPEG2000.dcm",
    "rtdose.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "liver_1frame.dcm",
    "examples_overlay.dcm",
    "examples_palette.dcm",
    "JPEG-lossy.dcm",
    "waveform_ecg.dcm",
    "test-SR.dcm",
    "reportsi.dcm",
    "693_J2KI.dcm",
    "examples_jpeg2k.dcm",
    "emri_small.dcm",
    "ExplVR_BigEnd.dcm",
    "SC_rgb_small_odd.dcm",
    "examples_ybr_color.dcm",
    "MR2_J2KI.dcm",
    "RG1_UNCR.dcm",
    "RG3_UNCI.dcm",
    "US1_UNCR.dcm",
    "MR_small_bigendian.dcm",
    "SC_rgb.dcm",
    "vlut_04.dcm",
    "OBXXXX1A.dcm",
    "color-pl.dcm",
    "mlut_18.dcm",
    "gdcm-US-ALOKA-16.dcm",
    "MR-SIEMENS-DICOM-WithOverlays.dcm",
)
# Values of those files left out, and why: a URL and build dates are refused by design (a URL is
# a HIPAA identifier; a date in a text cannot be told from an exam date); longer than a token.
DICOM_EXCLUDED = {"https://github.com/fedorov/dcmqi.git", "DICOMLib Ver02.00.00[20010925]"}


def dicom_values() -> list[tuple[str, Any]]:
    """("dicom_value", value) for every distinct value of DICOM_ATTRIBUTES in pydicom's test files."""
    import warnings

    import pydicom

    found: set[str] = set()
    for name in DICOM_FILES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = _testdata(name)
            if path is None:
                continue
            dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        for attribute in DICOM_ATTRIBUTES:
            value = dataset.get(attribute)
            if value is None or value == "":
                continue
            items = list(value) if isinstance(value, (pydicom.multival.MultiValue, list)) else [value]
            for item in items:
                text = str(item).strip()
                if text and len(text) <= 64 and text not in DICOM_EXCLUDED and not {"[", "]"} & set(text):
                    found.add(text)
    return [("dicom_value", value) for value in sorted(found)]


def _testdata(name: str) -> str | None:
    from pydicom.data import get_testdata_file

    try:
        return get_testdata_file(name)  # type: ignore[no-any-return]
    except OSError:  # a file pydicom fetches on demand, and there is no network: skip it
        return None


def legitimate_values() -> list[tuple[str, Any]]:
    """Every legitimate (feature, value) pair; deduplicated, in a stable order."""
    pairs = (
        [("manufacturer", v) for v in _VENDORS]
        + [("model_name", v) for v in _MODELS]
        + [("protocol", v) for v in _PROTOCOLS]
        + [("kernel", v) for v in _KERNELS]
        + [("body_part", v) for v in _BODY_PARTS]
        + [("software", v) for v in _SOFTWARE]
        + _OTHER
        + _PSEUDONYMS
        + dicom_values()
    )
    return list(dict.fromkeys(pairs))


# Free texts a QA physicist or an approver writes every day: all accepted.
TEXT_LEGITIMATE: list[str] = [
    "Sensitivity at site north fell below target for two windows in a row; rolling back to 2.0.3.",
    "Drift in slice_thickness since the 2026-11-02 protocol change on CT2; investigating with the vendor.",
    "AUC 0.84 (target 0.90) on Siemens scanners, 1,240 studies; see alert 17.",
    "Approved: the validation report for 2.1.0 covers the new kernel Br40d.",
    "Rejected: wait for the December reference set.",
    "Acknowledged, QA meeting on Thursday will review the manufacturer mix.",
    "Resolved after the SOMATOM Force software update VA48A.",
    "False alarm: a batch of 300 phantom scans from the physics QA on 2026-11-20.",
    "Label coverage 42% in the window; pathology results lag by 60 days.",
    "Promotion of 2.2.0 per change control CC-2026-118.",
    "Age band 90+ is under-represented; keep monitoring.",
    "Reviewed with the radiology AI committee; no patient harm identified.",
    "Output drift on GE MEDICAL SYSTEMS Revolution CT only.",
    "Scanner CT01 was out of service 3-5 November.",
    "",
]
