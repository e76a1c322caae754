"""Incidents: the alerts of one problem grouped under one primary alert that notifies for all (decision 0303).

Within one run (model, version, window), firing findings are joined when they rest on the same
evidence or explain each other:

- *aliases* (same kind and metric): a segment the check reported with `details.same_rows_as`
  (exactly the same studies), a declared overlap (`details.overlaps`: {segment: share} >= 95%), an
  intersection and a parent with the same shortfall (their intervals overlap, or the intersection
  holds >= 95% of the parent's cases), and two parents whose intersection holds >= 95% of each;
- *evidence* (another kind): a finding in the same segment (or the whole population) as a
  realized-performance finding, or a whole-population drift of the attribute that defines its
  segment (the drift of `manufacturer` next to the breach at `manufacturer=GE`) or of a feature its
  support check puts outside the reference. A whole-population drift joins a segment's incident only
  so, never because the incident holds the whole population's figure as evidence.

A whole-population figure that a segment explains (significantly below the rest, now or in an earlier
window while that segment's incident is open) is never the primary, even when more severe: it is evidence of the
segment's incident. Otherwise the primary is the most severe alert; among equals an incident that already
existed before this run keeps its place (its fingerprint stays the incident's identity as aliases come and go), then
realized performance before other kinds, the dataset-level drift before its features, the segment the check tested (not one it reported as
`same_rows_as` of it), the whole population before segments, fewer attributes first, the policy's
segment order. The other alerts point at it (`incident_id`) and send nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts.models import ACTIVE, SEVERITIES, Alert
from monitor.alerts.schemas import Finding

OVERLAP = 0.95
LOCALIZED = 0.5  # share of a segment's studies outside a feature's reference range: the drift is there
REALIZED = ("performance", "subgroups")
DATASET_DRIFT = ("dataset_drift_share", "unified_drift")  # whole-population aggregates of the features' drift


@dataclass(frozen=True)
class Firing:
    """A finding that raised (or updated) an alert in this call."""

    finding: Finding
    alert: Alert
    severity: str
    new: bool


def attributes(segment: str | None) -> set[str]:
    """'site=north&manufacturer=GE' -> {'site', 'manufacturer'}."""
    return {part.partition("=")[0] for part in segment.split("&")} if segment else set()


@dataclass
class Linked:
    """What linking changed besides the incidents themselves."""

    # Primaries that took over an incident which had already raised its critical email: they stay quiet.
    quiet: set[int] = field(default_factory=set)
    # Members that left an open incident in this window (alert, the incident it left, why): the caller
    # writes each to the alert's history and the audit trail.
    unlinked: list[tuple[Alert, int, str]] = field(default_factory=list)


def link(
    session: Session, *, firing: Sequence[Firing], observed: Iterable[Finding], segment_order: Sequence[str] = ()
) -> Linked:
    """Group this call's firing findings into incidents, run by run (flushes, never commits); links are
    re-evaluated in every window (a member whose own finding no longer supports its link leaves)."""
    runs: dict[tuple[str, str, datetime], list[Firing]] = {}
    for item in firing:
        f = item.finding
        runs.setdefault((f.model, f.version, f.window_end), []).append(item)
    seen: dict[tuple[str, str, datetime], list[Finding]] = {}
    for f in observed:
        seen.setdefault((f.model, f.version, f.window_end), []).append(f)
    result = Linked()
    for key in sorted(runs, key=lambda k: (k[0], k[1], k[2])):
        _Run(session, runs[key], seen.get(key, []), segment_order).link(result)
    session.flush()
    return result


class _Run:
    def __init__(self, session: Session, items: list[Firing], observed: list[Finding], order: Sequence[str]) -> None:
        self.session = session
        self.items = items
        self.order = list(order)
        self.alerts: dict[int, Alert] = {item.alert.id: item.alert for item in items}
        self.new = {item.alert.id for item in items if item.new}
        # Named by the check as the same rows as another segment: that other one is the check's primary.
        self.secondary = {item.alert.id for item in items if (item.finding.details or {}).get("same_rows_as")}
        self.parent: dict[int, int] = {alert_id: alert_id for alert_id in self.alerts}
        self.edges: list[tuple[int, int, str]] = []  # (joined to, joined, why)
        self.explained: set[int] = set()
        self.quiet: set[int] = set()  # whole-population alerts that a segment explains in this window
        self.by_key = {_key(item.finding): item for item in items}
        self.cases = {_key(f): f.n for f in observed}
        self.localized = _localized(observed)
        self.outside = _outside(observed)
        self.observed = observed
        # The incident each firing alert belonged to before this window was linked.
        self.before = {item.alert.id: item.alert.incident_id for item in items}
        self.why_left: dict[int, str] = {}

    # -------------------------------------------------------------- union-find

    def find(self, alert_id: int) -> int:
        while self.parent[alert_id] != alert_id:
            self.parent[alert_id] = self.parent[self.parent[alert_id]]
            alert_id = self.parent[alert_id]
        return alert_id

    def join(self, a: Alert, b: Alert, reason: str) -> None:
        for alert in (a, b):
            if alert.id not in self.parent:
                self.alerts[alert.id], self.parent[alert.id] = alert, alert.id
        self.edges.append((a.id, b.id, reason))
        ra, rb = self.find(a.id), self.find(b.id)
        if ra != rb:
            self.parent[rb] = ra

    # -------------------------------------------------------------- rules

    def link(self, result: Linked) -> None:
        self._aliases()
        self._existing()
        self._whole_from_segment()
        self._same_segment()
        self._outputs()
        self._evidence(critical_only=True)
        self._shared_shift()
        self._dataset_drift()
        self._evidence(critical_only=False)
        groups: dict[int, list[Alert]] = {}
        for alert_id in self.parent:
            groups.setdefault(self.find(alert_id), []).append(self.alerts[alert_id])
        for members in groups.values():
            if len(members) == 1:
                self._alone(members[0])
            else:
                self._settle(members)
        for alert_id, why in self.why_left.items():
            was = self.before.get(alert_id)
            if was is not None and was != alert_id and self._left(alert_id, was):
                result.unlinked.append((self.alerts[alert_id], was, why))
        result.quiet |= self.quiet

    def _left(self, alert_id: int, was: int) -> bool:
        """The alert was a member of the open incident `was` and is not in that incident's group now."""
        primary = self.session.get(Alert, was)
        if primary is None or primary.status not in ACTIVE:
            return False  # its incident closed: _alone detaches it, nothing to report
        return was not in self.parent or self.find(was) != self.find(alert_id)

    def _alone(self, alert: Alert) -> None:
        """An alert that no rule links in this run. It leaves its incident when that has closed, or when
        its own finding no longer supports the link (a segment the incident does not cover). Otherwise it
        stays: one check run sees only part of a window (the drift run before the subgroup run), and the
        incident's anchor may not have run yet."""
        if alert.incident_id is None:
            return
        primary = self.session.get(Alert, alert.incident_id)
        if alert.id in self.why_left or primary is None or primary.status not in ACTIVE:
            alert.incident_id = alert.incident_role = alert.incident_reason = None

    def _aliases(self) -> None:
        for item in self.items:
            f = item.finding
            details = f.details or {}
            same = details.get("same_rows_as")
            other = self.by_key.get(_key(f, same)) if isinstance(same, str) else None
            if other is not None:
                self.join(other.alert, item.alert, f"the same studies as {same}")
            overlaps = details.get("overlaps")
            for segment, share in overlaps.items() if isinstance(overlaps, dict) else ():
                other = self.by_key.get(_key(f, segment))
                if other is not None and isinstance(share, int | float) and share >= OVERLAP:
                    self.join(other.alert, item.alert, f"{share:.0%} of its studies are also in {segment}")
            if f.segment and "&" in f.segment:
                for part in f.segment.split("&"):
                    other = self.by_key.get(_key(f, part))
                    if other is not None and (_same_shortfall(f, other.finding) or self._covers(f, part)):
                        self.join(other.alert, item.alert, f"{f.segment} is within {part}, with the same shortfall")
        # Parents whose intersection (firing or not) holds nearly all of each one's cases.
        for f in self.observed:
            if not f.segment or "&" not in f.segment:
                continue
            parents = [self.by_key.get(_key(f, part)) for part in f.segment.split("&")]
            if all(p is not None for p in parents) and all(self._covers(f, part) for part in f.segment.split("&")):
                first = parents[0]
                assert first is not None
                for other in parents[1:]:
                    assert other is not None
                    self.join(first.alert, other.alert, f"nearly the same studies ({f.segment})")

    def _covers(self, intersection: Finding, parent: str) -> bool:
        inner, outer = self.cases.get(_key(intersection)), self.cases.get(_key(intersection, parent))
        return bool(inner and outer and inner >= OVERLAP * outer)

    def _existing(self) -> None:
        """An alias already in an open incident stays in it (the incident outlives its aliases' gaps), and
        so does evidence whose own finding still supports the link: a finding in one of the incident's
        segments (the primary's, or an alias's when the primary is a segment: a whole-population shift's
        segment shares are not the same studies), or a whole-population drift that segment still explains.
        Anything else (a near-miss of another segment glued on in an earlier window) is decided anew by
        this window's rules, and leaves the incident when none links it. Not the whole population's
        realized figures either: which segment explains them is decided window by window, so they never
        carry one problem's incident into another's."""
        segments: dict[int, set[str | None]] = {}
        for item in self.items:
            incident_id = item.alert.incident_id
            if incident_id is None or (item.finding.kind in REALIZED and item.finding.segment is None):
                continue
            primary = self.session.get(Alert, incident_id)
            if primary is None or primary.status not in ACTIVE:
                continue
            if incident_id not in segments:
                segments[incident_id] = {primary.segment}
                if primary.segment is not None:  # a segment's aliases are its studies under other names
                    segments[incident_id] |= {
                        m.segment
                        for m in self.session.execute(
                            select(Alert).where(Alert.incident_id == incident_id, Alert.incident_role == "alias")
                        ).scalars()
                    }
            segment = item.finding.segment
            if item.alert.incident_role != "alias" and segment is not None and segment not in segments[incident_id]:
                self.why_left[item.alert.id] = (
                    f"{item.finding.segment or 'the whole population'} is not a segment of incident "
                    f"#{incident_id}, and nothing in this window links its finding there"
                )
                continue
            why = self._still_explained(item, primary)
            if why is None:
                continue  # a whole-population drift that a segment's incident does not explain: decided anew
            self.join(primary, item.alert, why or item.alert.incident_reason or "linked earlier")

    def _still_explained(self, item: Firing, primary: Alert) -> str | None:
        """A whole-population drift stays with a segment's incident only while that segment explains it:
        the drift of the attribute that defines the segment, or of a feature outside the reference for
        most of its studies (now, or when it was linked). Never because the incident holds the whole
        population's figure. Returns None (not explained), '' (it stays, for the reason it was linked) or
        the reason it stays now (its old reason may name a group it has left)."""
        f = item.finding
        if f.segment is not None and (item.alert.incident_reason or "").startswith("part of the whole population's"):
            return None  # a segment's share of a whole-population shift goes where that shift goes, window by window
        if f.kind in REALIZED or f.segment is not None or primary.segment is None:
            return ""
        kind = f.kind.replace("_", " ")
        if f.feature and f.feature in attributes(primary.segment):
            return f"{kind} of {f.feature}, the attribute that defines {primary.segment}"
        share = self.localized.get(primary.segment, {}).get(f.feature or "")
        if share is not None:
            return f"{kind} of {f.feature}: {share:.0%} of the studies in {primary.segment} lie outside its reference range"
        reason = item.alert.incident_reason or ""
        return "" if "outside its reference range" in reason or "outside the reference range are in" in reason else None

    def _whole_from_segment(self) -> None:
        """A whole-population shortfall that one segment, significantly worse than the rest, explains."""
        for whole in self.items:
            f = whole.finding
            if f.kind not in REALIZED or f.segment is not None:
                continue
            worse = [
                item
                for item in self.items
                if item.finding.kind in REALIZED
                and item.finding.segment
                and item.finding.metric == f.metric
                and item.finding.status == "breach"
                and _below(((item.finding.details or {}).get("rest") or {}).get("difference_ci"))
            ]
            if worse:  # the most telling segment only: the whole population must not glue segments together
                item = min(worse, key=lambda i: self._rank(i.alert))
                reason = (
                    f"the whole population's {f.metric} shortfall comes from {item.finding.segment}, "
                    "significantly below the rest"
                )
                self.join(item.alert, whole.alert, reason)
                self.explained.add(whole.alert.id)
            elif (earlier := self._explained_before(whole)) is not None:
                # No segment is significantly below the rest in this window (fewer labels, a near-miss):
                # the segment that explained it before keeps it while its incident is open.
                self.join(earlier, whole.alert, whole.alert.incident_reason or "")
                self.explained.add(whole.alert.id)

    def _explained_before(self, whole: Firing) -> Alert | None:
        """The segment's realized alert whose incident (still open) holds this whole-population figure as
        explained by it; else None. The whole population stays there rather than leading an incident of its
        own in the windows where the segment's figure is a near-miss or has no run."""
        reason = whole.alert.incident_reason or ""
        if whole.alert.incident_id is None or "comes from" not in reason:
            return None
        primary = self.session.get(Alert, whole.alert.incident_id)
        if primary is None or primary.status not in ACTIVE or primary.segment is None or primary.kind not in REALIZED:
            return None
        return primary

    def _same_segment(self) -> None:
        """Realized-performance findings of one segment in one window are one problem there."""
        first: dict[str | None, Firing] = {}
        for item in self.items:
            if item.finding.kind not in REALIZED:
                continue
            segment = item.finding.segment
            if segment in first:
                where = segment or "the whole population"
                self.join(first[segment].alert, item.alert, f"{item.finding.metric} in {where}, in the same window")
            else:
                first[segment] = item

    def _outputs(self) -> None:
        """The whole population's output drifts of one window (the positive rate, the score distribution)
        are one shift of the model's outputs, seen twice."""
        first: Firing | None = None
        for item in self.items:
            f = item.finding
            if f.kind != "output_drift" or f.segment is not None:
                continue
            if first is None:
                first = item
            else:
                what = f"{f.metric} of {f.feature}" if f.feature else f.metric
                self.join(first.alert, item.alert, f"the model's outputs shifted: {what}, in the same window")

    def _anchors(self, *, critical_only: bool) -> list[tuple[Alert, list[Finding]]]:
        """Groups with a realized-performance finding of a warning or critical alert, most severe first:
        (the group's best alert, its findings)."""
        groups: dict[int, list[Firing]] = {}
        for item in self.items:
            groups.setdefault(self.find(item.alert.id), []).append(item)
        whole: dict[int, list[Alert]] = {}  # every alert of the group, the primaries _existing brought in too
        for alert_id in self.parent:
            whole.setdefault(self.find(alert_id), []).append(self.alerts[alert_id])
        anchors = []
        for root, items in groups.items():
            # A near-miss (an alert that has only ever been info) explains nothing: it is history on its
            # segment, never the anchor that drift or estimates are glued to.
            realized = [
                item.finding for item in items if item.finding.kind in REALIZED and item.alert.severity != "info"
            ]
            best = min(whole.get(root, [item.alert for item in items]), key=self._rank)
            if realized and (not critical_only or any(item.severity == "critical" for item in items)):
                anchors.append((best, realized))
        return sorted(anchors, key=lambda anchor: self._rank(anchor[0]))

    def _evidence(self, *, critical_only: bool) -> None:
        """Drift and estimates that a realized-performance problem explains join it (critical ones first)."""
        anchors = self._anchors(critical_only=critical_only)
        anchored = {self.find(alert.id) for alert, _ in anchors}
        for item in self.items:
            f = item.finding
            if f.kind in REALIZED or self.find(item.alert.id) in anchored:
                continue
            for alert, findings in anchors:
                reason = _explains(f, alert, findings, self.localized, self.outside)
                if reason:
                    self.join(alert, item.alert, reason)
                    break

    def _dataset_drift(self) -> None:
        """Whole-population input drifts that nothing else explains are the features behind the
        dataset-level drift of the same window (the share of drifted features), when that fires."""
        aggregate = next(
            (self.by_key[k] for k in (("input_drift", m, None, None) for m in DATASET_DRIFT) if k in self.by_key),
            None,
        )
        if aggregate is None:
            return
        anchored = {self.find(alert.id) for alert, _ in self._anchors(critical_only=False)}
        for item in self.items:
            f = item.finding
            if f.kind == "input_drift" and f.segment is None and self.find(item.alert.id) not in anchored:
                self.join(aggregate.alert, item.alert, f"one of the features behind the dataset drift ({f.feature})")

    def _shared_shift(self) -> None:
        """A segment's drift that the whole population shows too (same kind, metric, feature) is part of it."""
        anchored = {self.find(alert.id) for alert, _ in self._anchors(critical_only=False)}
        linked = {a for a, _, _ in self.edges} | {b for _, b, _ in self.edges}
        for item in self.items:
            f = item.finding
            overall = self.by_key.get(_key(f, "")) if f.segment else None
            if f.kind in REALIZED or overall is None or self.find(item.alert.id) in anchored:
                continue
            if item.alert.id in linked:  # already part of a problem (its segment's incident): not glued on
                continue
            self.join(overall.alert, item.alert, f"part of the whole population's {f.metric} shift, same window")

    # -------------------------------------------------------------- the incident

    def _rank(self, alert: Alert) -> tuple[int, ...]:
        attrs = alert.segment.split("&") if alert.segment else []
        first = attrs[0].partition("=")[0] if attrs else ""
        return (
            # A figure a segment explains is never the primary, not even when more severe: the
            # incident's identity (fingerprint) stays the segment's.
            1 if alert.id in self.explained else 0,
            SEVERITIES.index(alert.severity) if alert.severity in SEVERITIES else len(SEVERITIES),
            0 if alert.id not in self.new and alert.status in ACTIVE and alert.incident_id is None else 1,
            0 if alert.kind in REALIZED else 1,
            0 if alert.metric in DATASET_DRIFT else 1,
            1 if alert.id in self.secondary else 0,
            len(attrs),
            self.order.index(first) if first in self.order else len(self.order),
            0 if alert.status in ACTIVE else 1,
            alert.id,
        )

    def _reason(self, member: int, primary: int) -> str:
        """The rule that tied the member to the primary, else the one that brought the member in."""
        direct = [why for a, b, why in self.edges if {a, b} == {member, primary}]
        joined = [why for _, b, why in self.edges if b == member]
        return (direct or joined or [""])[0]

    def _settle(self, members: list[Alert]) -> None:
        inside = {alert.id for alert in members}
        primary = min(members, key=self._rank)
        if any(
            m is not primary and m.id not in self.new and m.incident_id is None and m.status in ACTIVE
            and m.severity == primary.severity
            for m in members
        ):  # fmt: skip
            self.quiet.add(primary.id)  # an incident as severe was already notified: no second email
        primary.incident_id = primary.incident_role = primary.incident_reason = None
        for alert in members:
            if alert is primary:
                continue
            same = (alert.kind, alert.metric, alert.feature) == (primary.kind, primary.metric, primary.feature)
            alert.incident_id = primary.id
            alert.incident_role = "alias" if same else "evidence"
            reason = self._reason(alert.id, primary.id) or alert.incident_reason or _relation(alert, primary)
            alert.incident_reason = reason[:500]
            # An incident absorbed into another: its members that are not part of this group stay an
            # incident of their own (led by their best alert) rather than riding along.
            orphans = [
                m
                for m in self.session.execute(select(Alert).where(Alert.incident_id == alert.id)).scalars()
                if m.id not in inside
            ]
            if orphans:
                head = min(orphans, key=self._rank)
                head.incident_id = head.incident_role = head.incident_reason = None
                for orphan in orphans:
                    if orphan is not head:
                        orphan.incident_id = head.id


def _key(f: Finding, segment: str | None = None) -> tuple[str, str, str | None, str | None]:
    """(kind, metric, feature, segment) of f, or of the same figure in another segment ('' = whole population)."""
    return (f.kind, f.metric, f.feature, f.segment if segment is None else segment or None)


def _localized(observed: Iterable[Finding]) -> dict[str, dict[str, float]]:
    """Per segment, the input features whose values lie outside the reference for most of its studies
    (the label-free estimate's support check lists them): a whole-population drift of such a feature
    is concentrated there."""
    found: dict[str, dict[str, float]] = {}
    for f in observed:
        features = (f.details or {}).get("features") if f.metric == "estimate_support" else None
        if not f.segment or not isinstance(features, dict):
            continue
        for name, facts in features.items():
            share = facts.get("share") if isinstance(facts, dict) else None
            if isinstance(share, int | float) and share >= LOCALIZED:
                found.setdefault(f.segment, {})[name] = float(share)
    return found


def _outside(observed: Iterable[Finding]) -> dict[str, float]:
    """Per segment ('' = the whole population), how many of its studies the label-free estimate's support
    check found outside the reference range (n x (1 - share inside))."""
    found: dict[str, float] = {}
    for f in observed:
        if f.metric == "estimate_support" and f.n and f.value is not None:
            found[f.segment or ""] = f.n * (1.0 - f.value)
    return found


def _below(interval: object) -> bool:
    """A difference's confidence interval lies wholly below zero."""
    return (
        isinstance(interval, list | tuple)
        and len(interval) == 2
        and isinstance(interval[1], int | float)
        and interval[1] < 0
    )


def _relation(member: Alert, primary: Alert) -> str:
    """Why a member belongs, when no rule named it: the same figure elsewhere, or a related one."""
    where = member.segment or "the whole population"
    if (member.kind, member.metric, member.feature) == (primary.kind, primary.metric, primary.feature):
        return f"the same {member.metric} shortfall in {where}, in the same windows"
    return f"{member.kind.replace('_', ' ')} {member.metric} in {where}, in the same windows"


def _same_shortfall(a: Finding, b: Finding) -> bool:
    """Both intervals overlap (or, without intervals, both fire): one shortfall seen twice."""
    if None in (a.ci_low, a.ci_high, b.ci_low, b.ci_high):
        return True
    return bool(a.ci_low <= b.ci_high and b.ci_low <= a.ci_high)  # type: ignore[operator]


def _explains(
    f: Finding,
    best: Alert,
    anchors: list[Finding],
    localized: dict[str, dict[str, float]],
    outside: dict[str, float] | None = None,
) -> str:
    """Why finding f (drift, estimate) is evidence of the realized-performance findings (of the group whose
    best alert is `best`), or ''. A whole-population finding is evidence of the whole population's problem,
    not of a segment's that the whole population's figure happens to show too, unless that segment holds
    nearly all of it: a whole-population drift of a feature localized there, the whole population's
    estimate support when >= 95% of its studies outside the reference range are that segment's."""
    kind = f.kind.replace("_", " ")
    for anchor in anchors:
        if f.segment == anchor.segment and (f.segment is not None or best.segment is None):
            return f"{kind} in {f.segment or 'the whole population'}, in the same window"
    whole = (outside or {}).get("") if f.metric == "estimate_support" and f.segment is None else None
    for anchor in anchors if whole else ():
        mine = (outside or {}).get(anchor.segment or "")
        if anchor.segment and whole and mine is not None and mine >= OVERLAP * whole:
            return (
                f"{min(mine / whole, 1.0):.0%} of the whole population's studies outside the reference range "
                f"are in {anchor.segment}"
            )
    if f.segment is not None or not f.feature:
        return ""
    for anchor in anchors:
        if f.feature in attributes(anchor.segment):
            return f"{kind} of {f.feature}, the attribute that defines {anchor.segment}"
    for anchor in anchors:
        share = localized.get(anchor.segment or "", {}).get(f.feature)
        if share is not None:
            return (
                f"{kind} of {f.feature}: {share:.0%} of the studies in {anchor.segment} lie outside its reference range"
            )
    return ""


def members_of(session: Session, primary_ids: Iterable[int]) -> dict[int, list[Alert]]:
    """Each incident's member alerts (aliases, then linked evidence; oldest first)."""
    ids = list(set(primary_ids))
    found: dict[int, list[Alert]] = {alert_id: [] for alert_id in ids}
    if not ids:
        return found
    rows = session.execute(
        select(Alert).where(Alert.incident_id.in_(ids)).order_by(Alert.incident_role, Alert.id)
    ).scalars()
    for alert in rows:
        assert alert.incident_id is not None
        found[alert.incident_id].append(alert)
    return found
