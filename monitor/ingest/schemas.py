"""Inference and outcome batches: the documented shapes, and the fast per-record parsers that enforce them.

The pydantic models document the API (OpenAPI) and the answer. Records themselves are checked
by hand-written parsers rather than one pydantic model per record: a batch holds up to 10000
records, each must be judged on its own with a readable reason, and the parsers are several
times faster (ingest throughput is a stated goal, DESIGN section 11).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from monitor.errors import Invalid
from monitor.ingest import phi

OUTCOME_SOURCES = ("pathology", "follow_up", "consensus_read", "report_nlp", "final_read", "other")
MAX_ID_LENGTH = 128
MAX_STUDY_KEY_LENGTH = 256
MAX_FEATURES = 256
MAX_FEATURE_NAME_LENGTH = 64
MAX_FEATURE_TEXT_LENGTH = phi.MAX_TOKEN_LENGTH
MAX_FEATURE_LIST_LENGTH = 64
# Clocks drift; a record from further ahead than this is a client bug, not a clock.
FUTURE_TOLERANCE = timedelta(days=1)
SMALLINT_RANGE = range(-32768, 32768)


@dataclass(frozen=True, slots=True)
class Plausibility:
    """Bounds a record's instants and latency must fall within (settings RADMON_OCCURRED_AT_MAX_AGE_DAYS,
    RADMON_OCCURRED_AT_MAX_AHEAD_HOURS, RADMON_MAX_LATENCY_MS): year 1, 1970 or a latency of 1e300
    are a client's bug, and would skew every window they land in."""

    max_age: timedelta = timedelta(days=3650)
    max_ahead: timedelta = FUTURE_TOLERANCE
    max_latency_ms: float = 86_400_000.0

    @classmethod
    def from_settings(cls, settings: Any) -> Plausibility:
        return cls(
            max_age=timedelta(days=settings.occurred_at_max_age_days),
            max_ahead=timedelta(hours=settings.occurred_at_max_ahead_hours),
            max_latency_ms=float(settings.max_latency_ms),
        )


DEFAULT_PLAUSIBILITY = Plausibility()

_RECORD_NOTE = (
    "Each record is validated on its own: an invalid record is listed in `rejected` with its index and "
    "a reason, and never prevents the others from being stored."
)


# ---------------------------------------------------------------------------- documented shapes


class InferenceRecord(BaseModel):
    """One inference a model made."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(description="registered model name", examples=["ich-ct"])
    version: str = Field(description="registered version of that model", examples=["2.1.0"])
    inference_id: str = Field(
        min_length=1, max_length=MAX_ID_LENGTH, description="the client's id; idempotency key, unique per model"
    )
    occurred_at: datetime = Field(description="when the model ran; ISO 8601 with a timezone")
    study_key: str | None = Field(
        default=None,
        max_length=MAX_STUDY_KEY_LENGTH,
        description="study identifier (e.g. accession number); pseudonymized with a keyed HMAC before storage",
    )
    score: float = Field(description="model output; between 0 and 1 for a binary model")
    prediction: int = Field(description="predicted label; 0 or 1 for a binary model")
    latency_ms: float | None = Field(default=None, ge=0)
    features: dict[str, Any] = Field(
        default_factory=dict,
        description="numbers, short strings, booleans, nulls or flat lists of them. Only the features the model's "
        "monitoring policy declares are stored: an undeclared one is dropped and named in `dropped` (or the "
        "record rejected, if the policy says so); declared numeric features must be numbers in their plausible "
        "range. Identifier-like names or values (patient name, MRN, birth date, phone, email, address, "
        "accession number...) are rejected wherever they appear",
        examples=[{"site": "north", "manufacturer": "GE", "kvp": 120, "slice_thickness": 2.5, "age_band": "60-69"}],
    )


class OutcomeRecord(BaseModel):
    """The confirmed truth for one inference (inference_id) or for every inference on a study (study_key)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(examples=["ich-ct"])
    inference_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH, description="give this or study_key")
    study_key: str | None = Field(
        default=None, max_length=MAX_STUDY_KEY_LENGTH, description="give this or inference_id"
    )
    label: Literal[0, 1]
    source: Literal["pathology", "follow_up", "consensus_read", "report_nlp", "final_read", "other"]
    confirmed_at: datetime = Field(description="when the truth was established; ISO 8601 with a timezone")


class InferenceBatch(BaseModel):
    records: list[InferenceRecord] = Field(max_length=10_000, description=_RECORD_NOTE)


class OutcomeBatch(BaseModel):
    records: list[OutcomeRecord] = Field(max_length=10_000, description=_RECORD_NOTE)


class Duplicate(BaseModel):
    index: int = Field(description="position of the record in the request's `records`")
    inference_id: str | None


class Rejection(BaseModel):
    index: int = Field(description="position of the record in the request's `records`")
    inference_id: str | None = None
    field: str = Field(description="the offending field, e.g. `score` or `features.patient_name`")
    reason: str


class Dropped(BaseModel):
    index: int = Field(description="position of the record in the request's `records`")
    inference_id: str | None
    features: list[str] = Field(description="features the model's policy does not declare: not stored")


class IngestResult(BaseModel):
    accepted: int = Field(description="records stored by this request (all committed when the answer is 2xx)")
    duplicates: list[Duplicate] = Field(description="records already stored with the same content: not stored again")
    rejected: list[Rejection]
    dropped: list[Dropped] = Field(
        default_factory=list, description="stored records some of whose features were left out (undeclared)"
    )


def request_body_schema(batch: type[BaseModel]) -> dict[str, Any]:
    """The batch's JSON schema with its record schema inlined, for `openapi_extra`."""
    schema = batch.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return {"required": True, "content": {"application/json": {"schema": inline(schema)}}}


# ---------------------------------------------------------------------------- parsing


def records_of(payload: Any) -> list[Any]:
    """The `records` list of a decoded request body, or Invalid (422) naming what is wrong."""
    if not isinstance(payload, dict):
        raise Invalid('the body must be a JSON object: {"records": [...]}')
    records = payload.get("records")
    if records is None:
        raise Invalid('the body has no "records" field: send {"records": [...]}')
    if not isinstance(records, list):
        raise Invalid(f'"records" must be a list of records; got {_json_type(records)}')
    unknown = set(payload) - {"records"}
    if unknown:
        raise Invalid(f'unknown field(s) in the body: {", ".join(sorted(unknown))}; only "records" is accepted')
    return records


class Problem(NamedTuple):
    """Why one record was rejected."""

    field: str
    reason: str


@dataclass(slots=True)
class ParsedInference:
    index: int
    model: str
    version: str
    inference_id: str
    study_key: str | None  # as sent; the service pseudonymizes it
    occurred_at: datetime  # aware, UTC
    score: float
    prediction: int
    latency_ms: float | None
    features: dict[str, Any]


@dataclass(slots=True)
class ParsedOutcome:
    index: int
    model: str
    inference_id: str | None
    study_key: str | None  # as sent; the service pseudonymizes it
    label: int
    source: str
    confirmed_at: datetime  # aware, UTC


INFERENCE_FIELDS = frozenset(
    ("model", "version", "inference_id", "occurred_at", "study_key", "score", "prediction", "latency_ms", "features")
)
OUTCOME_FIELDS = frozenset(("model", "inference_id", "study_key", "label", "source", "confirmed_at"))
_JSON_TYPES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def inference_id_of(raw: Any) -> str | None:
    """The record's inference_id when it has a usable one (for the answer)."""
    if isinstance(raw, dict):
        value = raw.get("inference_id")
        if isinstance(value, str) and is_name(value) and phi.id_problem(value) is None:
            return value  # the answer must not repeat an identifier
    return None


def _unknown_fields(raw: dict[str, Any], known: frozenset[str]) -> Problem | None:
    if raw.keys() <= known:
        return None
    unknown = sorted(set(raw) - known)
    listed = ", ".join(repr(name) for name in unknown)
    return Problem(unknown[0], f"unknown field(s) {listed}; known fields: {', '.join(sorted(known))}")


def _name(raw: dict[str, Any], field: str) -> str | Problem:
    value = raw.get(field)
    if value is None:
        return Problem(field, f"{field} is required")
    if value.__class__ is not str or not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        return Problem(
            field, f"{field} must be a string of 1 to {MAX_ID_LENGTH} printable characters; got {_show(value)}"
        )
    looks_like = phi.id_problem(value)
    if looks_like is not None:
        # Not quoted back: it may be the identifier itself.
        return Problem(field, f"{field} looks like {looks_like}; ids must be opaque keys ({phi.ADVICE})")
    return value


def _show(value: Any) -> str:
    """A short rendering of a bad value for a reason (never used for PHI-bearing fields)."""
    text = (
        repr(value) if isinstance(value, str) else _json_type(value) if isinstance(value, (dict, list)) else str(value)
    )
    return text if len(text) <= 60 else text[:57] + "..."


def _study_key(raw: dict[str, Any]) -> str | None | Problem:
    value = raw.get("study_key")
    if value is None:
        return None
    if value.__class__ is not str or not value.strip() or len(value) > MAX_STUDY_KEY_LENGTH or "\x00" in value:
        # The value is not quoted back: it is an identifier.
        return Problem(
            "study_key", f"study_key must be a non-empty string of at most {MAX_STUDY_KEY_LENGTH} characters"
        )
    if phi.hidden_character(value):
        return Problem(
            "study_key", "study_key holds invisible or control characters: the same study would get another pseudonym"
        )
    return value


def parse_instant(
    value: Any, field: str, *, now: datetime, plausibility: Plausibility = DEFAULT_PLAUSIBILITY
) -> datetime | Problem:
    """An ISO 8601 date-time with a timezone, as aware UTC, within the plausible window around `now`."""
    if value is None:
        return Problem(field, f"{field} is required (ISO 8601 with a timezone, e.g. 2026-11-02T08:14:05Z)")
    if value.__class__ is not str:
        return Problem(field, f"{field} must be an ISO 8601 date-time string; got {_json_type(value)}")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        example = "2026-11-02T08:14:05Z"
        return Problem(
            field, f"{field} must be an ISO 8601 date-time with a timezone, e.g. {example}; got {_show(value)}"
        )
    if instant.tzinfo is None or instant.utcoffset() is None:
        return Problem(
            field, f"{field} must include a timezone (e.g. 2026-11-02T08:14:05Z or +01:00); got {_show(value)}"
        )
    if instant.tzinfo is not UTC:
        try:
            instant = instant.astimezone(UTC)
        except OverflowError:
            return Problem(field, f"{field} is out of range; got {_show(value)}")
    if instant > now + plausibility.max_ahead:
        return Problem(
            field,
            f"{field} is more than {_span(plausibility.max_ahead)} in the future ({instant.isoformat()}); "
            "check the sender's clock",
        )
    if instant < now - plausibility.max_age:
        return Problem(
            field,
            f"{field} is more than {_span(plausibility.max_age)} in the past ({instant.isoformat()}); "
            "a default or unset clock (year 1, 1970) is not a time a model ran",
        )
    return instant


def _span(span: timedelta) -> str:
    if span >= timedelta(days=2):
        return f"{span.days} days"
    hours = span.total_seconds() / 3600
    return "a day" if hours == 24 else f"{hours:g} hours"


def _number(raw: dict[str, Any], field: str, *, required: bool) -> float | None | Problem:
    value = raw.get(field)
    if value is None:
        return Problem(field, f"{field} is required") if required else None
    cls = value.__class__
    if cls is float:
        return value  # JSON cannot carry NaN or infinity (orjson refuses them)
    if cls is int:
        problem = phi.number_problem(value)
        return float(value) if problem is None else Problem(field, f"{field}: {problem}")
    if cls is bool:
        return Problem(field, f"{field} must be a number; got a boolean (booleans are not numbers)")
    return Problem(field, f"{field} must be a number; got {_show(value)}")


def _label(raw: dict[str, Any], field: str) -> int | Problem:
    value = raw.get(field)
    if value is None:
        return Problem(field, f"{field} is required")
    if value.__class__ is int:
        problem = phi.number_problem(value)
        return value if problem is None else Problem(field, f"{field}: {problem}")
    if value.__class__ is bool:
        return Problem(field, f"{field} must be an integer; got a boolean (booleans are not numbers)")
    if value.__class__ is float and value.is_integer():
        return int(value)
    return Problem(field, f"{field} must be an integer; got {_show(value)}")


class _NamesCheck(NamedTuple):
    problem: Problem | None
    age_keys: tuple[str, ...]


@lru_cache(maxsize=4096)
def _names_check(names: tuple[str, ...]) -> _NamesCheck:
    # Records from one source share their feature names: judged once per set.
    if len(names) > MAX_FEATURES:
        return _NamesCheck(
            Problem("features", f"features may hold at most {MAX_FEATURES} entries; got {len(names)}"), ()
        )
    for name in names:
        if not name or len(name) > MAX_FEATURE_NAME_LENGTH or not name.isprintable():
            reason = f"feature names must be 1 to {MAX_FEATURE_NAME_LENGTH} printable characters; got {_show(name)}"
            return _NamesCheck(Problem("features", reason), ())
    verdict = phi.names_verdict(names)
    return _NamesCheck(Problem(*verdict.problem) if verdict.problem else None, verdict.age_keys)


def features_problem(features: dict[str, Any]) -> Problem | None:
    """Shape and PHI guard of a record's features, in one pass over the values."""
    names = _names_check(tuple(features))
    if names.problem is not None:
        return names.problem
    value_problem = phi.value_problem
    for name, value in features.items():
        cls = value.__class__
        if cls is float or cls is bool or value is None:
            continue
        if cls is int:
            if not -phi.MAX_EXACT_INTEGER <= value <= phi.MAX_EXACT_INTEGER:
                return _bad_number(name, value)
            continue
        if cls is str:
            if len(value) > MAX_FEATURE_TEXT_LENGTH or "\x00" in value:
                return _bad_text(name)
            looks_like = value_problem(value)
            if looks_like is not None:
                return Problem(*phi.value_reason(name, looks_like))
        elif cls is list:
            problem = _list_problem(name, value)
            if problem is not None:
                return problem
        else:
            return _bad_feature(name, value)
    if names.age_keys:
        found = phi.age_problem(features, names.age_keys)
        if found is not None:
            return Problem(*found)
    return None


def _list_problem(name: str, values: list[Any]) -> Problem | None:
    if len(values) > MAX_FEATURE_LIST_LENGTH:
        return _bad_feature(name, values)
    for item in values:
        if item.__class__ is str:
            if len(item) > MAX_FEATURE_TEXT_LENGTH or "\x00" in item:
                return _bad_text(name)
        elif item.__class__ is int:
            if phi.number_problem(item) is not None:
                return _bad_number(name, item)
        elif item is not None and item.__class__ not in (float, bool):
            return _bad_feature(name, values)
    looks_like = phi.list_problem(values)
    return Problem(*phi.value_reason(name, looks_like)) if looks_like is not None else None


def _bad_text(name: str) -> Problem:
    field = f"features.{name}"
    return Problem(
        field,
        f"{field} must be a short categorical value (at most {MAX_FEATURE_TEXT_LENGTH} characters, no NUL); "
        "free text is not stored",
    )


def _bad_number(name: str, value: int) -> Problem:
    field = f"features.{name}"
    return Problem(field, f"{field}: {phi.number_problem(value)}")


def _bad_feature(name: str, value: Any) -> Problem:
    field = f"features.{name}"
    return Problem(
        field,
        f"{field} must be a number, string, boolean, null or a flat list of at most {MAX_FEATURE_LIST_LENGTH} "
        f"of them; got {_json_type(value)}",
    )


# A score beyond this is not a model's output but a client's bug (and 1e300 breaks every mean).
_SCORE_BOUND = 1e12


def is_name(value: Any) -> bool:
    """A valid model, version or inference_id value: 1 to 128 printable characters, none invisible
    (an inference_id must also pass phi.id_problem)."""
    return (
        value.__class__ is str
        and 0 < len(value) <= MAX_ID_LENGTH
        and value.isprintable()
        and (value.isascii() or not phi.hidden_character(value))
    )


def parse_inference(
    raw: Any, index: int, *, now: datetime, plausibility: Plausibility = DEFAULT_PLAUSIBILITY
) -> ParsedInference | Problem:
    """One inference record, shape- and PHI-checked (model-dependent checks come later, in the service).

    Written as one straight pass because it runs for every record of every batch; the
    messages for the rare bad record are built by the helpers it falls back to."""
    if raw.__class__ is not dict:
        return Problem("record", f"each record must be a JSON object; got {_json_type(raw)}")
    if not raw.keys() <= INFERENCE_FIELDS:
        return _unknown_fields(raw, INFERENCE_FIELDS) or Problem("record", "unknown fields")
    get = raw.get
    model, version, inference_id = get("model"), get("version"), get("inference_id")
    if not (
        is_name(model) and is_name(version) and is_name(inference_id) and phi.id_problem(inference_id) is None  # type: ignore[arg-type]
    ):
        for field in ("model", "version", "inference_id"):
            found = _name(raw, field)
            if found.__class__ is Problem:
                return found  # type: ignore[return-value]
    study_key = get("study_key")
    if study_key is not None and (
        study_key.__class__ is not str
        or len(study_key) > MAX_STUDY_KEY_LENGTH
        or "\x00" in study_key
        or not study_key.strip()
        or (not study_key.isascii() or not study_key.isprintable())
        and phi.hidden_character(study_key)
    ):
        return _study_key(raw)  # type: ignore[return-value]
    occurred_at = parse_instant(get("occurred_at"), "occurred_at", now=now, plausibility=plausibility)
    if occurred_at.__class__ is Problem:
        return occurred_at  # type: ignore[return-value]
    score = get("score")
    if score.__class__ is not float or not -_SCORE_BOUND <= score <= _SCORE_BOUND:
        score = _number(raw, "score", required=True)
        if score.__class__ is Problem:
            return score  # type: ignore[no-any-return]
        if not -_SCORE_BOUND <= score <= _SCORE_BOUND:  # type: ignore[operator]
            return Problem("score", f"score must be between -1e12 and 1e12; got {score:g}")
    prediction = get("prediction")
    if prediction.__class__ is not int or not -phi.MAX_EXACT_INTEGER <= prediction <= phi.MAX_EXACT_INTEGER:
        prediction = _label(raw, "prediction")
        if prediction.__class__ is Problem:
            return prediction  # type: ignore[no-any-return]
    latency_ms = get("latency_ms")
    if latency_ms is not None:
        if latency_ms.__class__ is int:
            if phi.number_problem(latency_ms) is not None:
                return _number(raw, "latency_ms", required=False)  # type: ignore[return-value]
            latency_ms = float(latency_ms)
        elif latency_ms.__class__ is not float:
            return _number(raw, "latency_ms", required=False)  # type: ignore[return-value]
        if latency_ms < 0:
            return Problem("latency_ms", f"latency_ms must not be negative; got {latency_ms:g}")
        if latency_ms > plausibility.max_latency_ms:
            return Problem(
                "latency_ms",
                f"latency_ms must be at most {plausibility.max_latency_ms:g} (RADMON_MAX_LATENCY_MS); "
                f"got {latency_ms:g}",
            )
    features = get("features")
    if features is None:
        features = {}
    elif features.__class__ is not dict:
        return Problem("features", f"features must be an object of name: value; got {_json_type(features)}")
    else:
        problem = features_problem(features)
        if problem is not None:
            return problem
    # The `__class__ is` checks above narrow every field (isinstance costs more on this path); mypy cannot see it.
    return ParsedInference(index, model, version, inference_id, study_key, occurred_at, score, prediction, latency_ms, features)  # type: ignore[arg-type]  # fmt: skip


def check_for_task(record: ParsedInference, task: str) -> Problem | None:
    """The checks that depend on the model's task."""
    if task == "binary":
        if not 0.0 <= record.score <= 1.0:
            return Problem("score", f"score must be between 0 and 1 for a binary model; got {record.score:g}")
        if record.prediction not in (0, 1):
            return Problem("prediction", f"prediction must be 0 or 1 for a binary model; got {record.prediction}")
    elif record.prediction not in SMALLINT_RANGE:
        return Problem("prediction", f"prediction must be a class index between 0 and 32767; got {record.prediction}")
    if not math.isfinite(record.score):
        return Problem("score", "score must be a finite number")
    return None


def parse_outcome(
    raw: Any, index: int, *, now: datetime, plausibility: Plausibility = DEFAULT_PLAUSIBILITY
) -> ParsedOutcome | Problem:
    """One outcome record, shape-checked (its target is looked up later, in the service)."""
    if raw.__class__ is not dict:
        return Problem("record", f"each record must be a JSON object; got {_json_type(raw)}")
    if not raw.keys() <= OUTCOME_FIELDS:
        return _unknown_fields(raw, OUTCOME_FIELDS) or Problem("record", "unknown fields")
    model = _name(raw, "model")
    if isinstance(model, Problem):
        return model
    has_id, has_key = raw.get("inference_id") is not None, raw.get("study_key") is not None
    if has_id == has_key:
        return Problem(
            "inference_id",
            "give exactly one of inference_id (the outcome of one inference) or study_key "
            "(the outcome of every inference on that study)" + ("; got both" if has_id else "; got neither"),
        )
    inference_id: str | None = None
    study_key: str | None = None
    if has_id:
        found = _name(raw, "inference_id")
        if isinstance(found, Problem):
            return found
        inference_id = found
    else:
        key = _study_key(raw)
        if isinstance(key, Problem):
            return key
        study_key = key
    label = _label(raw, "label")
    if isinstance(label, Problem):
        return label
    if label not in (0, 1):
        return Problem("label", f"label must be 0 or 1; got {label}")
    source = raw.get("source")
    if source not in OUTCOME_SOURCES:
        return Problem("source", f"source must be one of {', '.join(OUTCOME_SOURCES)}; got {_show(source)}")
    confirmed_at = parse_instant(raw.get("confirmed_at"), "confirmed_at", now=now, plausibility=plausibility)
    if isinstance(confirmed_at, Problem):
        return confirmed_at
    return ParsedOutcome(index, model, inference_id, study_key, label, source, confirmed_at)
