"""The report lifecycle: generate a draft, sign it (re-authenticated), keep it immutable, correct it
by a new revision (decision 0604). Nothing here commits; a refusal that must stay on record (an
attempt on a signed report, a failed signature) comes back as `ReportResult.refusal` after its audit
event is written: the caller commits, then raises it."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.audit import service as audit_service
from monitor.auth import service as auth_service
from monitor.auth.actors import Actor, Permission, authorize
from monitor.auth.models import User
from monitor.db import utcnow
from monitor.errors import Conflict, Forbidden, Invalid, MonitorError, NotFound
from monitor.ingest import phi
from monitor.registry import service as registry_service
from monitor.registry.models import Model
from monitor.reports import document
from monitor.reports.content import gather
from monitor.reports.models import ReportSignature, SurveillanceReport
from monitor.reports.schemas import ReportCreate, ReportOut, ReportSign, ReportSignatureOut, RevisionCreate

ENTITY = "surveillance_report"
# Who may do what with reports (decision 0604). Reading and downloading: every reader role
# (Permission.MODELS_READ). Generating and correcting: qa and admin (the scheduler and the CLI act
# as the system, an admin). Signing: the QA lead reviews; an approver approves when the policy asks.
GENERATE_ROLES = frozenset({"qa", "admin"})
SIGN_ROLES = {"reviewed": frozenset({"qa"}), "approved": frozenset({"approver"})}
IMMUTABLE = ("reviewed", "signed")


@dataclass(frozen=True)
class ReportResult:
    """What an action did. With `refusal` set nothing changed but the refusal's audit event (or a
    failed signature's): the caller commits, then raises the refusal."""

    report: ReportOut | None
    refusal: MonitorError | None = None


def _require_role(actor: Actor, roles: frozenset[str], what: str) -> None:
    if actor.role not in roles:
        raise Forbidden(f"role '{actor.role}' may not {what}", details={"user": actor.username})


def _label(report: SurveillanceReport, model: Model) -> str:
    return (
        f"the report of {model.name} for {report.period_start.isoformat()} to {report.period_end.isoformat()}, "
        f"revision {report.revision} (#{report.id})"
    )


def _today() -> date:
    return utcnow().astimezone(UTC).date()


def _check_period(period_start: date, period_end: date, today: date) -> None:
    if period_end > today:
        raise Invalid(
            f"the period ends {period_end.isoformat()}, after today ({today.isoformat()} UTC); "
            "a report covers days that have passed"
        )
    if period_end < period_start:
        raise Invalid(f"period_end {period_end} is before period_start {period_start}")


def _latest(session: Session, model_id: int, period_start: date, period_end: date) -> SurveillanceReport | None:
    return session.execute(
        select(SurveillanceReport)
        .where(
            SurveillanceReport.model_id == model_id,
            SurveillanceReport.period_start == period_start,
            SurveillanceReport.period_end == period_end,
        )
        .order_by(SurveillanceReport.revision.desc())
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()


def _signatures(session: Session, report_id: int) -> list[ReportSignature]:
    return list(
        session.execute(
            select(ReportSignature)
            .where(ReportSignature.report_id == report_id)
            .order_by(ReportSignature.signed_at, ReportSignature.id)
        ).scalars()
    )


def _printed(signatures: Sequence[ReportSignature]) -> list[document.ReportSignature]:
    return [
        document.ReportSignature(
            printed_name=s.printed_name, username=s.username, role=s.role, meaning=s.meaning, signed_at=s.signed_at
        )
        for s in signatures
    ]


def _supersedes(session: Session, report: SurveillanceReport) -> document.Supersedes | None:
    if report.supersedes_id is None:
        return None
    previous = session.get(SurveillanceReport, report.supersedes_id)
    assert previous is not None
    return document.Supersedes(revision=previous.revision, sha256=previous.sha256)


def _render(
    session: Session, report: SurveillanceReport, signatures: Sequence[ReportSignature] = ()
) -> document.RenderedReport:
    return document.render_report(
        session,
        model_id=report.model_id,
        period_start=report.period_start,
        period_end=report.period_end,
        revision=report.revision,
        supersedes=_supersedes(session, report),
        signatures=_printed(signatures),
    )


def _render_html(session: Session, report: SurveillanceReport, signatures: Sequence[ReportSignature]) -> str:
    content = gather(session, model_id=report.model_id, period_start=report.period_start, period_end=report.period_end)
    return document.render_html(
        content, revision=report.revision, supersedes=_supersedes(session, report), signatures=_printed(signatures)
    )


def _store(report: SurveillanceReport, rendered: document.RenderedReport) -> None:
    report.html, report.pdf, report.sha256, report.pages = rendered.html, rendered.pdf, rendered.sha256, rendered.pages


def _refuse(
    session: Session, actor: Actor, report: SurveillanceReport, attempt: str, refusal: MonitorError
) -> MonitorError:
    """An attempt on a signed report, on record: who tried what, on which hash."""
    audit_service.record(
        session=session,
        actor=actor,
        action="report.refused",
        entity=ENTITY,
        entity_id=report.id,
        after={"attempt": attempt, "status": report.status, "revision": report.revision, "sha256": report.sha256},
        reason=refusal.message,
    )
    return refusal


def _immutable(model: Model, report: SurveillanceReport, attempt: str) -> Conflict:
    return Conflict(
        f"{_label(report, model)} is {report.status} and immutable: it cannot be {attempt}; "
        "a correction is a new revision that references it (and is signed again)",
        details={"report_id": report.id, "status": report.status, "sha256": report.sha256},
    )


def generate(
    *, session: Session, actor: Actor, data: ReportCreate, approval_required: bool = False, now: datetime | None = None
) -> ReportResult:
    """Draft the report of a period (qa, admin); a draft of the same period is replaced, a signed one is not."""
    _require_role(actor, GENERATE_ROLES, "generate surveillance reports")
    now = now or utcnow()
    assert data.period_start is not None and data.period_end is not None
    _check_period(data.period_start, data.period_end, now.astimezone(UTC).date())
    model = registry_service.find_model(session=session, name=data.model)
    latest = _latest(session, model.id, data.period_start, data.period_end)
    if latest is not None and latest.status in IMMUTABLE:
        refusal = _refuse(session, actor, latest, "regenerate", _immutable(model, latest, "regenerated"))
        return ReportResult(_views(session, [latest], approval_required)[0], refusal=refusal)
    if latest is None:
        report = SurveillanceReport(
            model_id=model.id,
            period_start=data.period_start,
            period_end=data.period_end,
            revision=1,
            supersedes_id=None,
            reason="",
        )
        before = None
    else:
        report = latest
        before = {"sha256": latest.sha256, "generated_at": latest.generated_at, "generated_by": latest.generated_by}
    _fill_draft(session, report, actor, now)
    try:
        with session.begin_nested():
            session.add(report)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"the report of {model.name} for this period was generated by someone else at the same moment; reload"
        ) from None
    audit_service.record(
        session=session,
        actor=actor,
        action="report.generate" if before is None else "report.regenerate",
        entity=ENTITY,
        entity_id=report.id,
        before=before,
        after=_audit_view(model, report),
    )
    return ReportResult(_views(session, [report], approval_required)[0])


def _fill_draft(session: Session, report: SurveillanceReport, actor: Actor, now: datetime) -> None:
    rendered = _render(session, report)
    _store(report, rendered)
    report.draft_sha256 = rendered.sha256
    report.status = "draft"
    report.generated_at, report.generated_by = now, actor.username
    report.signed_at = None


def _audit_view(model: Model, report: SurveillanceReport) -> dict[str, object]:
    return {
        "model": model.name,
        "period_start": report.period_start.isoformat(),
        "period_end": report.period_end.isoformat(),
        "revision": report.revision,
        "supersedes_id": report.supersedes_id,
        "status": report.status,
        "sha256": report.sha256,
        "draft_sha256": report.draft_sha256,
        "pages": report.pages,
    }


def _lock(session: Session, report_id: int) -> SurveillanceReport:
    report = session.get(SurveillanceReport, report_id, with_for_update=True, populate_existing=True)
    if report is None:
        raise NotFound(f"no surveillance report #{report_id}")
    return report


def _model_of(session: Session, report: SurveillanceReport) -> Model:
    model = session.get(Model, report.model_id)
    assert model is not None
    return model


def sign(
    *,
    session: Session,
    actor: Actor,
    report_id: int,
    data: ReportSign,
    approval_required: bool = False,
    now: datetime | None = None,
) -> ReportResult:
    """Sign with the password checked again: the QA lead's review, then (by policy) an approver's approval.
    The PDF is rendered again with the signature printed; its hash and the signature go into the audit chain."""
    _require_role(actor, SIGN_ROLES[data.meaning], f"sign surveillance reports as {data.meaning}")
    now = now or utcnow()
    report = _lock(session, report_id)
    model = _model_of(session, report)
    existing = _signatures(session, report.id)
    problem = _signing_problem(model, report, existing, actor, data.meaning, approval_required)
    if problem is not None:
        if report.status in IMMUTABLE and not (data.meaning == "approved" and report.status == "reviewed"):
            problem = _refuse(session, actor, report, f"sign ({data.meaning})", problem)
            return ReportResult(_views(session, [report], approval_required)[0], refusal=problem)
        raise problem
    check = auth_service.reauthenticate(
        session=session, actor=actor, password=data.password.get_secret_value(), purpose=f"report:{report.id}", now=now
    )
    if check.refusal is not None:
        return ReportResult(_views(session, [report], approval_required)[0], refusal=check.refusal)
    assert check.user is not None
    # What the signer saw must still be what the stored data gives: late data must not slip under a signature.
    # The PDF is a deterministic function of its HTML, so comparing the HTML is enough and skips a PDF layout
    # (about half of a signature's time on the demo's month).
    shown = _render_html(session, report, existing)
    if shown != report.html:
        shown_sha256 = hashlib.sha256(shown.encode()).hexdigest()
        refusal = Conflict(
            f"the stored data behind {_label(report, model)} changed since it was generated (PDF SHA-256 "
            f"{report.sha256[:12]}…; its HTML now renders differently); nothing was signed: "
            + ("generate the draft again and review it" if report.status == "draft" else "correct it by a new revision")
        )
        audit_service.record(
            session=session,
            actor=actor,
            action="report.sign_refused",
            entity=ENTITY,
            entity_id=report.id,
            after={
                "stored_sha256": report.sha256,
                "stored_html_sha256": hashlib.sha256(report.html.encode()).hexdigest(),
                "rendered_html_sha256": shown_sha256,
                "meaning": data.meaning,
            },
            reason=refusal.message,
        )
        return ReportResult(_views(session, [report], approval_required)[0], refusal=refusal)
    _add_signature(session, report, check.user, data.meaning, existing, approval_required, now)
    return ReportResult(_views(session, [report], approval_required)[0])


def _signing_problem(
    model: Model,
    report: SurveillanceReport,
    existing: list[ReportSignature],
    actor: Actor,
    meaning: str,
    approval_required: bool,
) -> MonitorError | None:
    if report.status == "signed":
        return _immutable(model, report, "signed again")
    if meaning == "reviewed" and report.status != "draft":
        return _immutable(model, report, "reviewed again")
    if meaning == "approved":
        if not approval_required:
            return Conflict(
                "the policy asks for no approver's signature (RADMON_REPORT_APPROVAL_REQUIRED is off): "
                "a report is complete with the QA lead's review"
            )
        if report.status == "draft":
            return Conflict(f"{_label(report, model)} is not reviewed yet: the QA lead signs it first")
        if any(s.username == actor.username for s in existing):
            return Forbidden("you reviewed this report; under the two-person rule someone else approves it")
    return None


def _add_signature(
    session: Session,
    report: SurveillanceReport,
    signer: User,
    meaning: str,
    existing: list[ReportSignature],
    approval_required: bool,
    now: datetime,
) -> None:
    signature = ReportSignature(
        report_id=report.id,
        user_id=signer.id,
        username=signer.username,
        printed_name=signer.printed_name,
        role=signer.role,
        meaning=meaning,
        signed_at=now,
        signed_sha256=report.sha256,
        pdf_sha256="",
    )
    rendered = _render(session, report, [*existing, signature])
    signature.pdf_sha256 = rendered.sha256
    before = {"status": report.status, "sha256": report.sha256}
    _store(report, rendered)
    complete = meaning == "approved" or not approval_required
    report.status = "signed" if complete else "reviewed"
    if complete:
        report.signed_at = now
    session.add(signature)
    session.flush()
    audit_service.record(
        session=session,
        actor=signer.username,
        action=f"report.{meaning}",
        entity=ENTITY,
        entity_id=report.id,
        before=before,
        after={
            "status": report.status,
            "sha256": report.sha256,
            "draft_sha256": report.draft_sha256,
            "pages": report.pages,
            "signature": {
                "username": signature.username,
                "printed_name": signature.printed_name,
                "role": signature.role,
                "meaning": signature.meaning,
                "signed_at": signature.signed_at.isoformat(),
                "signed_sha256": signature.signed_sha256,
                "pdf_sha256": signature.pdf_sha256,
            },
        },
    )


def revise(
    *,
    session: Session,
    actor: Actor,
    report_id: int,
    data: RevisionCreate,
    approval_required: bool = False,
    now: datetime | None = None,
) -> ReportResult:
    """A correction: a new draft revision of a signed report's period that references it (qa, admin)."""
    _require_role(actor, GENERATE_ROLES, "correct surveillance reports")
    phi.check_free_text(field="reason", value=data.reason, record=f"correction of report #{report_id}")
    now = now or utcnow()
    report = _lock(session, report_id)
    model = _model_of(session, report)
    if report.status != "signed":
        raise Conflict(
            f"{_label(report, model)} is {report.status}: only a signed report is corrected by a new revision"
            + ("; a draft is simply generated again" if report.status == "draft" else "")
        )
    later = session.execute(
        select(SurveillanceReport.id, SurveillanceReport.revision).where(
            SurveillanceReport.model_id == report.model_id,
            SurveillanceReport.period_start == report.period_start,
            SurveillanceReport.period_end == report.period_end,
            SurveillanceReport.revision > report.revision,
        )
    ).first()
    if later is not None:
        raise Conflict(
            f"revision {later.revision} (#{later.id}) of this period already exists; correct the latest revision",
            details={"report_id": later.id},
        )
    correction = SurveillanceReport(
        model_id=report.model_id,
        period_start=report.period_start,
        period_end=report.period_end,
        revision=report.revision + 1,
        supersedes_id=report.id,
        reason=data.reason.strip(),
    )
    _fill_draft(session, correction, actor, now)
    try:
        with session.begin_nested():
            session.add(correction)
            session.flush()
    except IntegrityError:
        raise Conflict("another correction of this report was made at the same moment; reload") from None
    audit_service.record(
        session=session,
        actor=actor,
        action="report.revise",
        entity=ENTITY,
        entity_id=correction.id,
        before={"supersedes_id": report.id, "supersedes_sha256": report.sha256},
        after=_audit_view(model, correction),
        reason=correction.reason,
    )
    return ReportResult(_views(session, [correction], approval_required)[0])


def delete_draft(*, session: Session, actor: Actor, report_id: int) -> ReportResult:
    """Discard a draft (qa, admin); a reviewed or signed report is refused, and the attempt recorded."""
    _require_role(actor, GENERATE_ROLES, "delete surveillance reports")
    report = _lock(session, report_id)
    model = _model_of(session, report)
    if report.status in IMMUTABLE:
        return ReportResult(
            None, refusal=_refuse(session, actor, report, "delete", _immutable(model, report, "deleted"))
        )
    view = _audit_view(model, report)
    session.delete(report)
    session.flush()
    audit_service.record(
        session=session, actor=actor, action="report.delete", entity=ENTITY, entity_id=report_id, before=view
    )
    return ReportResult(None)


# ---------------------------------------------------------------------------- reads


def get_report(*, session: Session, actor: Actor, report_id: int, approval_required: bool = False) -> ReportOut:
    authorize(actor, Permission.MODELS_READ)
    report = session.get(SurveillanceReport, report_id)
    if report is None:
        raise NotFound(f"no surveillance report #{report_id}")
    return _views(session, [report], approval_required)[0]


def list_reports(
    *, session: Session, actor: Actor, model_name: str | None = None, approval_required: bool = False, limit: int = 500
) -> list[ReportOut]:
    """Newest period first, latest revision first."""
    authorize(actor, Permission.MODELS_READ)
    query = select(SurveillanceReport).order_by(
        SurveillanceReport.period_end.desc(),
        SurveillanceReport.period_start.desc(),
        SurveillanceReport.model_id,
        SurveillanceReport.revision.desc(),
    )
    if model_name:
        query = query.where(
            SurveillanceReport.model_id == registry_service.find_model(session=session, name=model_name).id
        )
    # The PDF and the HTML stay in the database until someone asks for them.
    reports = list(session.execute(query.limit(limit)).scalars())
    return _views(session, reports, approval_required)


@dataclass(frozen=True)
class ReportFile:
    name: str
    content: bytes
    sha256: str


def report_pdf(*, session: Session, actor: Actor, report_id: int) -> ReportFile:
    """The PDF exactly as stored, with a file name that says what it is."""
    authorize(actor, Permission.MODELS_READ)
    report = session.get(SurveillanceReport, report_id)
    if report is None:
        raise NotFound(f"no surveillance report #{report_id}")
    model = _model_of(session, report)
    name = (
        f"radmon-report-{model.name}-{report.period_start.isoformat()}-to-{report.period_end.isoformat()}"
        f"-r{report.revision}-{report.status}.pdf"
    )
    return ReportFile(name=name, content=report.pdf, sha256=report.sha256)


def report_html(*, session: Session, actor: Actor, report_id: int) -> str:
    """The HTML preview as stored (the same document as the PDF)."""
    authorize(actor, Permission.MODELS_READ)
    report = session.get(SurveillanceReport, report_id)
    if report is None:
        raise NotFound(f"no surveillance report #{report_id}")
    return report.html


def exists_for_period(*, session: Session, model_id: int, period_start: date, period_end: date) -> bool:
    return bool(
        session.execute(
            select(func.count())
            .select_from(SurveillanceReport)
            .where(
                SurveillanceReport.model_id == model_id,
                SurveillanceReport.period_start == period_start,
                SurveillanceReport.period_end == period_end,
            )
        ).scalar_one()
    )


def _views(session: Session, reports: list[SurveillanceReport], approval_required: bool) -> list[ReportOut]:
    """Responses for reports, with a handful of queries whatever their number."""
    if not reports:
        return []
    ids = [r.id for r in reports]
    models = {
        m.id: m for m in session.execute(select(Model).where(Model.id.in_({r.model_id for r in reports}))).scalars()
    }
    signatures: dict[int, list[ReportSignature]] = defaultdict(list)
    for signature in session.execute(
        select(ReportSignature)
        .where(ReportSignature.report_id.in_(ids))
        .order_by(ReportSignature.signed_at, ReportSignature.id)
    ).scalars():
        signatures[signature.report_id].append(signature)
    superseded_by = dict(
        session.execute(
            select(SurveillanceReport.supersedes_id, SurveillanceReport.id).where(
                SurveillanceReport.supersedes_id.in_(ids)
            )
        ).all()
    )
    previous_ids = {r.supersedes_id for r in reports if r.supersedes_id is not None}
    previous_revisions = (
        dict(
            session.execute(
                select(SurveillanceReport.id, SurveillanceReport.revision).where(
                    SurveillanceReport.id.in_(previous_ids)
                )
            ).all()
        )
        if previous_ids
        else {}
    )
    sizes: dict[int, int] = dict(
        session.execute(
            select(SurveillanceReport.id, func.length(SurveillanceReport.pdf)).where(SurveillanceReport.id.in_(ids))
        ).all()
    )
    views = []
    for r in reports:
        model = models[r.model_id]
        views.append(
            ReportOut(
                id=r.id,
                model=model.name,
                model_display_name=model.display_name,
                period_start=r.period_start,
                period_end=r.period_end,
                revision=r.revision,
                supersedes_id=r.supersedes_id,
                supersedes_revision=previous_revisions.get(r.supersedes_id) if r.supersedes_id else None,
                superseded_by_id=superseded_by.get(r.id),
                reason=r.reason,
                status=r.status,
                sha256=r.sha256,
                draft_sha256=r.draft_sha256,
                pages=r.pages,
                size_bytes=int(sizes.get(r.id) or 0),
                generated_at=r.generated_at,
                generated_by=r.generated_by,
                signed_at=r.signed_at,
                approval_required=approval_required,
                awaiting=_awaiting(r.status, approval_required),
                signatures=[_signature_out(s) for s in signatures[r.id]],
            )
        )
    return views


def _awaiting(status: str, approval_required: bool) -> str | None:
    if status == "draft":
        return "reviewed"
    if status == "reviewed" and approval_required:
        return "approved"
    return None


def _signature_out(signature: ReportSignature) -> ReportSignatureOut:
    return ReportSignatureOut(
        username=signature.username,
        printed_name=signature.printed_name,
        role=signature.role,
        meaning=signature.meaning,
        signed_at=signature.signed_at,
        signed_sha256=signature.signed_sha256,
        pdf_sha256=signature.pdf_sha256,
        manifestation=(
            f"Signed by {signature.printed_name} ({signature.username}, {signature.role}) on "
            f"{signature.signed_at:%Y-%m-%d %H:%M:%S} UTC; meaning: {signature.meaning}"
        ),
    )
