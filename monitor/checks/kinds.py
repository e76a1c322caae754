"""The check-kind registry: kind name -> runner(context) -> result, and what runners share.

A runner gets a KindContext for one (model, version, window) and returns a KindResult with
its findings (future metric points). Runners never write runs or metric points themselves:
flows.run_checks persists, supersedes and audits, so a new kind is its spec in checks.catalog
and one decorated function (in a module flows imports):

    @register("performance")
    def performance(context: KindContext) -> KindResult: ...
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from monitor.auth.actors import Actor
from monitor.checks.catalog import KINDS
from monitor.checks.profiles import ReferenceProfile
from monitor.checks.schemas import MonitoringPolicy
from monitor.checks.windows import Window, WindowProfile, window_profile
from monitor.reference import service as reference_service
from monitor.reference.models import ReferenceSet
from monitor.registry.models import Model, ModelVersion


@dataclass
class Finding:
    """One figure of a run, as it will be stored in metric_points."""

    metric: str
    status: str
    value: float | None = None
    feature: str | None = None
    segment: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    threshold: float | None = None
    method: str | None = None
    estimated: bool = False
    details: dict[str, Any] | None = None


@dataclass
class KindResult:
    status: str  # completed, failed, insufficient_data
    summary: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def failed(cls, message: str) -> KindResult:
        return cls(status="failed", summary={}, findings=[], error=message)


class KindContext:
    """One model version and window; reference and window profile are resolved once, lazily,
    and shared by every kind run for that version and window."""

    def __init__(
        self,
        *,
        session: Session,
        actor: Actor,
        model: Model,
        version: ModelVersion,
        policy: MonitoringPolicy,
        window: Window,
        resets: dict[tuple[str, str, str | None, str | None], datetime] | None = None,
    ) -> None:
        self.session, self.actor, self.model, self.version = session, actor, model, version
        self.policy, self.window = policy, window
        # (kind, metric, feature, segment) -> when a person last acknowledged or resolved that series'
        # alert: a sequential series restarts there (docs/decisions/0503). Filled by flows (alerts sit above kinds).
        self.resets = resets or {}
        self.notes: list[str] = []

    def reset(self) -> None:
        """Forget what was resolved (after a kind's savepoint rolled back)."""
        for name in ("reference_set", "reference", "window_profile"):
            self.__dict__.pop(name, None)

    @cached_property
    def reference_set(self) -> ReferenceSet:
        return reference_service.reference_for_checks(
            session=self.session,
            actor=self.actor,
            model=self.model,
            version=self.version,
            policy=self.policy,
            notes=self.notes,
        )

    @cached_property
    def reference(self) -> ReferenceProfile:
        return reference_service.profile_for(
            session=self.session,
            reference_set=self.reference_set,
            features=self.policy.features,
            segments=self.policy.segments,
        )

    @cached_property
    def window_profile(self) -> WindowProfile:
        return window_profile(
            self.session,
            model_id=self.model.id,
            version_id=self.version.id,
            reference_set_id=self.reference_set.id,
            reference=self.reference,
            features=self.policy.features,
            window=self.window,
        )

    def rng(self, salt: str) -> np.random.Generator:
        """Seeded by what the run is about, so a re-run of the same window reproduces its figures."""
        key = f"{self.model.id}:{self.version.id}:{self.reference_set.id}:{self.window.end.isoformat()}:{salt}"
        return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


Runner = Callable[[KindContext], KindResult]
RUNNERS: dict[str, Runner] = {}


def register(kind: str) -> Callable[[Runner], Runner]:
    """Make `kind` runnable; the kind must have a spec in checks.catalog."""
    if kind not in KINDS:
        raise ValueError(f"unknown check kind '{kind}'")

    def decorate(runner: Runner) -> Runner:
        RUNNERS[kind] = runner
        return runner

    return decorate


def implemented_kinds() -> list[str]:
    """The kinds with a runner, in the contract's order."""
    return [kind for kind in KINDS if kind in RUNNERS]


def window_end_default(now: datetime) -> datetime:
    """Today 00:00 UTC: the daily run evaluates the days that ended."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
