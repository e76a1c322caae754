"""The jurisdictions an adverse event can be reported to, with their deadlines (settings or defaults)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.adverse.deadlines import Calendar, Unit, known_country
from monitor.config import Settings
from monitor.errors import ConfigurationError


class JurisdictionSpec(BaseModel):
    """One entry of RADMON_ADVERSE_JURISDICTIONS (a JSON list of these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    name: str = Field(min_length=1, max_length=200)
    regulation: str = Field(default="", max_length=200)
    days: int = Field(ge=1, le=365)
    unit: Unit
    # A shorter deadline when remedial action is needed to prevent a risk (21 CFR 803.53).
    remedial_days: int | None = Field(default=None, ge=1, le=365)
    remedial_unit: Unit | None = None
    remedial_regulation: str = Field(default="", max_length=200)
    # The holidays package's calendar (ISO country code; empty: weekends only) and extra dates.
    country: str = Field(default="", max_length=8)
    subdivision: str = Field(default="", max_length=16)
    extra_holidays: tuple[date, ...] = ()

    @field_validator("country")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


@dataclass(frozen=True)
class Jurisdiction:
    spec: JurisdictionSpec
    calendar: Calendar

    @property
    def code(self) -> str:
        return self.spec.code

    def rule(self, remedial_action: bool) -> tuple[int, Unit, str]:
        """(days, unit, regulation) that applies to an event with or without remedial action."""
        spec = self.spec
        if remedial_action and spec.remedial_days is not None:
            return spec.remedial_days, spec.remedial_unit or spec.unit, spec.remedial_regulation or spec.regulation
        return spec.days, spec.unit, spec.regulation


DEFAULTS: tuple[dict[str, object], ...] = (
    {
        "code": "fda-user-facility",
        "name": "FDA MedWatch 3500A, user facility",
        "regulation": "21 CFR 803.30",
        "days": 10,
        "unit": "work",
        "country": "US",
    },
    {
        "code": "fda-manufacturer",
        "name": "FDA MDR, manufacturer",
        "regulation": "21 CFR 803.50",
        "days": 30,
        "unit": "calendar",
        "remedial_days": 5,
        "remedial_unit": "work",
        "remedial_regulation": "21 CFR 803.53",
        "country": "US",
    },
    {
        "code": "eu-mdr-serious-incident",
        "name": "EU MDR serious incident",
        "regulation": "MDR Art. 87(3)",
        "days": 15,
        "unit": "calendar",
    },
)


def parse(raw: str) -> dict[str, Jurisdiction]:
    """The configured jurisdictions by code; the defaults when `raw` is empty."""
    try:
        entries = json.loads(raw) if raw.strip() else list(DEFAULTS)
        if not isinstance(entries, list) or not entries:
            raise ValueError("must be a non-empty JSON list of jurisdictions")
        specs = [JurisdictionSpec.model_validate(entry) for entry in entries]
    except (ValueError, ValidationError) as exc:
        raise ConfigurationError(f"RADMON_ADVERSE_JURISDICTIONS: {exc}") from None
    result: dict[str, Jurisdiction] = {}
    for spec in specs:
        if spec.code in result:
            raise ConfigurationError(f"RADMON_ADVERSE_JURISDICTIONS: code {spec.code!r} appears twice")
        if spec.country and not known_country(spec.country, spec.subdivision):
            raise ConfigurationError(
                f"RADMON_ADVERSE_JURISDICTIONS: no holiday calendar for country {spec.country!r}"
                + (f" subdivision {spec.subdivision!r}" if spec.subdivision else "")
            )
        calendar = Calendar(spec.country, spec.subdivision, frozenset(spec.extra_holidays))
        result[spec.code] = Jurisdiction(spec, calendar)
    return result


def configured(settings: Settings) -> dict[str, Jurisdiction]:
    return parse(settings.adverse_jurisdictions)


def facility_zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.facility_timezone)


def reminder_work_days(settings: Settings) -> tuple[int, ...]:
    return tuple(int(part) for part in settings.adverse_reminder_work_days.split(",") if part.strip())
