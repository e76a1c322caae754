"""Named, composable real-world failure modes, each injected from an onset day."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from monitor.simulate.scanners import SITES, SUCCESSORS
from monitor.simulate.world import FEATURES, Cohort, Fleet, age_bands

ALIASES = {"onset": "onset_day", "ramp": "ramp_days"}
POPULATIONS = {
    # A nursing-home referral network: older, more often female.
    "geriatric": (np.array([0.01, 0.01, 0.02, 0.05, 0.11, 0.25, 0.35, 0.20]), 0.60),
    # A new trauma service: young, mostly male.
    "young": (np.array([0.30, 0.25, 0.17, 0.12, 0.08, 0.05, 0.02, 0.01]), 0.30),
}


@dataclass(frozen=True)
class Scenario:
    """No change: the null scenario, and the base whose hooks the others override."""

    name: ClassVar[str] = "null"
    summary: ClassVar[str] = "no change: every day is drawn from the reference distribution"
    onset_day: int = 45

    def __post_init__(self) -> None:
        if self.onset_day < 0:
            raise ValueError(f"{self.name}: onset_day must be >= 0; got {self.onset_day}")
        site = getattr(self, "site", None)
        if site is not None and site not in SITES:
            raise ValueError(f"{self.name}: unknown site '{site}' (sites: {', '.join(SITES)})")

    def active(self, cohort: Cohort) -> np.ndarray:
        return (cohort.day >= self.onset_day) & cohort.at_site(getattr(self, "site", None))

    def ramp(self, cohort: Cohort, days: int) -> np.ndarray:
        """0 before onset, rising to 1 over `days` (at once when days is 0)."""
        elapsed = cohort.day - self.onset_day + 1
        return np.clip(elapsed / days, 0.0, 1.0) if days > 0 else (elapsed > 0).astype(float)

    def population(self, cohort: Cohort) -> None:
        """Change who is scanned (age band, sex)."""

    def prevalence(self, cohort: Cohort, *, base: float) -> None:
        """Change each study's probability of hemorrhage (cohort.risk)."""

    def scanners(self, cohort: Cohort, fleet: Fleet) -> None:
        """Point studies at other scanner profiles."""

    def noise(self, cohort: Cohort) -> None:
        """Scale image noise (cohort.noise_factor)."""

    def scores(self, cohort: Cohort, logit: np.ndarray) -> np.ndarray:
        """Transform the model's output (log-odds)."""
        return logit

    def missing(self, cohort: Cohort, rates: dict[str, np.ndarray]) -> None:
        """Raise the chance that features never reach the monitor."""

    @property
    def spec(self) -> str:
        """The text parse_scenarios reads back into this scenario."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) != f.default}
        changed = [f"{key}={_format(value)}" for key, value in values.items()]
        return f"{self.name}:{','.join(changed)}" if changed else self.name


@dataclass(frozen=True)
class ScannerChange(Scenario):
    name: ClassVar[str] = "scanner_change"
    summary: ClassVar[str] = (
        "one site replaces its scanner and head protocol (lower kVp, thinner slices, a reconstruction "
        "that reads blood darker): its inputs shift and the fixed model's sensitivity falls there"
    )
    site: str = "north"
    manufacturer: str | None = None  # default: the site's current manufacturer
    scanner_model: str | None = None  # default: that manufacturer's successor model
    kernel: str | None = None
    kvp: int = 100
    slice_thickness: float = 2.5
    hu_shift: float = -8.0
    noise_factor: float = 1.0

    def scanners(self, cohort: Cohort, fleet: Fleet) -> None:
        current = fleet.profiles[SITES.index(self.site)]
        manufacturer = self.manufacturer or current.manufacturer
        successor_model, successor_kernel = SUCCESSORS.get(
            manufacturer, (f"{current.scanner_model} II", current.kernel)
        )
        new = replace(
            current,
            manufacturer=manufacturer,
            scanner_model=self.scanner_model or successor_model,
            kernel=self.kernel or successor_kernel,
            kvp=self.kvp,
            slice_thickness=self.slice_thickness,
            hu_bias=current.hu_bias + self.hu_shift,
            noise_base=current.noise_base * self.noise_factor,
        )
        cohort.scanner[self.active(cohort)] = fleet.add(new)


@dataclass(frozen=True)
class NewPopulation(Scenario):
    name: ClassVar[str] = "new_population"
    summary: ClassVar[str] = (
        "a new referral stream changes the age and sex mix (geriatric: older, more women; young: trauma)"
    )
    mix: str = "geriatric"
    share: float = 0.6  # of studies after onset that come from the new population
    site: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mix not in POPULATIONS:
            raise ValueError(f"new_population: unknown mix '{self.mix}' (known: {', '.join(POPULATIONS)})")
        _fraction(self, "share", self.share)

    def population(self, cohort: Cohort) -> None:
        probs, female_share = POPULATIONS[self.mix]
        newcomers = self.active(cohort) & (cohort.draws.u("population") < self.share)
        cohort.age_band[newcomers] = age_bands(cohort.draws.u("age")[newcomers], probs)
        cohort.female[newcomers] = cohort.draws.u("sex")[newcomers] < female_share


@dataclass(frozen=True)
class PrevalenceShift(Scenario):
    name: ClassVar[str] = "prevalence_shift"
    summary: ClassVar[str] = "the share of studies with hemorrhage moves to `to` (e.g. a stroke service opens)"
    to: float = 0.2
    ramp_days: int = 0
    site: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.to < 0.9:
            raise ValueError(f"prevalence_shift: to must be between 0 and 0.9; got {self.to}")

    def prevalence(self, cohort: Cohort, *, base: float) -> None:
        target = base + (self.to - base) * self.ramp(cohort, self.ramp_days)
        where = self.active(cohort)
        cohort.risk[where] *= target[where] / base


@dataclass(frozen=True)
class NoiseDrift(Scenario):
    name: ClassVar[str] = "noise_drift"
    summary: ClassVar[str] = "image noise grows a little every day (an ageing X-ray tube, a detector fault)"
    per_day: float = 0.01  # relative growth of noise SD per day after onset
    site: str | None = None

    def noise(self, cohort: Cohort) -> None:
        elapsed = np.maximum(cohort.day - self.onset_day, 0)
        cohort.noise_factor *= np.where(cohort.at_site(self.site), 1.0 + self.per_day * elapsed, 1.0)


@dataclass(frozen=True)
class UnseenCategory(Scenario):
    name: ClassVar[str] = "unseen_category"
    summary: ClassVar[str] = "a scanner of a manufacturer absent from the reference takes a share of one site's studies"
    site: str = "east"
    share: float = 0.5
    manufacturer: str = "UIH"
    scanner_model: str = "uCT 760"
    kernel: str = "B_SOFT_B"
    kvp: int = 120
    slice_thickness: float = 5.0
    hu_shift: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _fraction(self, "share", self.share)

    def scanners(self, cohort: Cohort, fleet: Fleet) -> None:
        current = fleet.profiles[SITES.index(self.site)]
        new = replace(
            current,
            manufacturer=self.manufacturer,
            scanner_model=self.scanner_model,
            kernel=self.kernel,
            kvp=self.kvp,
            slice_thickness=self.slice_thickness,
            hu_bias=current.hu_bias + self.hu_shift,
        )
        moved = self.active(cohort) & (cohort.draws.u("scanner") < self.share)
        cohort.scanner[moved] = fleet.add(new)


@dataclass(frozen=True)
class MissingSurge(Scenario):
    name: ClassVar[str] = "missing_surge"
    summary: ClassVar[str] = "a new PACS router strips header fields: those features go missing in a share of studies"
    rate: float = 0.4
    features: tuple[str, ...] = ("kvp", "slice_thickness", "kernel", "scanner_model", "ctdi_vol")
    site: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _fraction(self, "rate", self.rate)
        unknown = [name for name in self.features if name not in FEATURES[1:]]
        if unknown or not self.features:
            raise ValueError(
                f"missing_surge: features must be among {', '.join(FEATURES[1:])}; got {list(self.features)}"
            )

    def missing(self, cohort: Cohort, rates: dict[str, np.ndarray]) -> None:
        where = self.active(cohort)
        for name in self.features:
            rates[name] = np.where(where, np.maximum(rates[name], self.rate), rates[name])


@dataclass(frozen=True)
class CalibrationDecay(Scenario):
    name: ClassVar[str] = "calibration_decay"
    summary: ClassVar[str] = (
        "the model's scores drift (log-odds shifted by `shift`, scaled by `slope`) over `ramp_days`: "
        "ranking is kept, calibration and the operating point are not"
    )
    shift: float = 1.0
    slope: float = 1.0
    ramp_days: int = 30
    site: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.slope <= 0:
            raise ValueError(f"calibration_decay: slope must be > 0 to keep the ranking; got {self.slope}")

    def scores(self, cohort: Cohort, logit: np.ndarray) -> np.ndarray:
        progress = self.ramp(cohort, self.ramp_days) * self.active(cohort)
        return (1.0 + (self.slope - 1.0) * progress) * logit + self.shift * progress


SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls
    for cls in (
        Scenario, ScannerChange, NewPopulation, PrevalenceShift, NoiseDrift, UnseenCategory, MissingSurge, CalibrationDecay,
    )
}  # fmt: skip
Null = Scenario
# Compositions with a name of their own; `demo` is the hospital of DESIGN section 13.
PRESETS = {
    "demo": "scanner_change:site=north,onset=45+prevalence_shift:onset=60,to=0.16+new_population:onset=30,share=0.4",
}


def parse_scenarios(spec: str) -> list[Scenario]:
    """Scenarios from text: `name[:key=value,...]` joined by `+`; `|` separates list items."""
    scenarios: list[Scenario] = []
    for part in (p.strip() for p in (spec or "null").split("+")):
        if part in PRESETS:
            scenarios.extend(parse_scenarios(PRESETS[part]))
            continue
        name, _, arguments = part.partition(":")
        cls = SCENARIOS.get(name.strip())
        if cls is None:
            known = ", ".join([*SCENARIOS, *PRESETS])
            raise ValueError(f"unknown scenario '{name.strip()}' (known: {known})")
        scenarios.append(cls(**_arguments(cls, arguments)))
    return scenarios


def catalog() -> dict[str, dict[str, Any]]:
    """Every scenario with what it does and its parameters' defaults (for help texts)."""
    return {
        name: {"summary": cls.summary, "parameters": {f.name: f.default for f in dataclasses.fields(cls)}}
        for name, cls in SCENARIOS.items()
    } | {name: {"summary": f"preset: {spec}", "parameters": {}} for name, spec in PRESETS.items()}


def _arguments(cls: type[Scenario], text: str) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        key, sep, raw = item.partition("=")
        key = ALIASES.get(key.strip(), key.strip())
        if not sep or key not in names:
            raise ValueError(f"{cls.name}: expected key=value with key among {', '.join(sorted(names))}; got '{item}'")
        values[key] = _coerce(cls.name, key, raw.strip(), hints[key])
    return values


def _coerce(scenario: str, key: str, raw: str, hint: Any) -> Any:
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if type(None) in options and raw.lower() in ("", "none", "null"):
        return None
    target = next(o for o in options if o is not type(None))
    try:
        if typing.get_origin(target) is tuple:
            return tuple(v.strip() for v in raw.split("|") if v.strip())
        return target(raw)
    except ValueError:
        raise ValueError(f"{scenario}: {key} must be {getattr(target, '__name__', target)}; got '{raw}'") from None


def _format(value: Any) -> str:
    return "|".join(value) if isinstance(value, tuple) else str(value)


def _fraction(scenario: Scenario, key: str, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{scenario.name}: {key} must be in (0, 1]; got {value}")
