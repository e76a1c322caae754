"""Email content: the adverse-event email, the digest and the test email (Jinja2, text and HTML parts)."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from monitor.checks.catalog import is_drift, kind_label, lower_is_better

# Bodies are encoded at 78 columns (quoted-printable lines must stay short), but a subject a little over
# 78 characters must not be folded right after "Subject:": parsers then keep the fold's leading space.
_UNFOLDED_HEADERS = email_policy.default.clone(max_line_length=998)


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("monitor.alerts", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def alert_link(dashboard_url: str, alert_id: int) -> str:
    """The alert's page in the dashboard."""
    return f"{dashboard_url.rstrip('/')}/alerts?id={alert_id}"


def segment_phrase(segment: str | None) -> str:
    """'site=north&manufacturer=GE' -> 'at site north, manufacturer GE' (empty for the whole population)."""
    if not segment:
        return ""
    parts = [part.partition("=") for part in segment.split("&")]
    named = ", ".join(f"{name} {value}" if sep else name for name, sep, value in parts)
    return f"at {named}" if parts[0][0] == "site" else f"for {named}"


def headline(
    *,
    kind: str,
    metric: str,
    feature: str | None,
    segment: str | None,
    value: float | None,
    threshold: float | None,
    estimated: bool,
) -> str:
    """What happened, in a subject line's words: 'sensitivity below target at site north'."""
    if is_drift(kind):
        label = kind_label(kind).lower()
        subject = f"{label} in {feature}" if feature else f"{label} ({metric})"
        where = segment_phrase(segment)
        return f"{subject} {where}".strip()
    name = f"estimated {metric}" if estimated or kind == "estimated_performance" else metric
    if value is None or threshold is None:
        relation = "out of range"
    elif lower_is_better(metric):
        relation = "above target" if value > threshold else "near target"
    else:
        relation = "below target" if value < threshold else "near target"
    return f"{name} {relation} {segment_phrase(segment)}".strip()


def figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def figure_with_interval(evidence: dict[str, Any]) -> str:
    """'0.780 (95% CI 0.701-0.846, n=212)'."""
    parts = []
    if evidence.get("ci_low") is not None and evidence.get("ci_high") is not None:
        parts.append(f"95% CI {figure(evidence['ci_low'])}-{figure(evidence['ci_high'])}")
    if evidence.get("n") is not None:
        parts.append(f"n={evidence['n']}")
    text = figure(evidence.get("value"))
    return f"{text} ({', '.join(parts)})" if parts else text


def when(value: datetime | str | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def day(value: datetime | str | None) -> str:
    """'Nov 3, 2026': a date as a reader says it."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value:%b} {value.day}, {value.year}"


def window_start(window_end: datetime | str, window_days: int) -> datetime:
    end = datetime.fromisoformat(window_end) if isinstance(window_end, str) else window_end
    return end - timedelta(days=window_days)


# Realized proportions in clinical words: (cases counted in n, what a failure is, failures at the value).
_PLAIN = {
    "sensitivity": ("confirmed positive studies", "were missed (not flagged by the model)"),
    "specificity": ("confirmed negative studies", "were flagged positive (false alarms)"),
    "ppv": ("studies the model flagged positive", "were not confirmed positive (false alarms)"),
    "npv": ("studies the model did not flag", "were confirmed positive (missed)"),
}


def plain_measurement(
    *,
    kind: str,
    metric: str,
    feature: str | None,
    segment: str | None,
    evidence: dict[str, Any],
    target: float | None,
    window_days: int,
) -> str:
    """What was measured, in words a radiologist acts on: 'About 15 of 70 confirmed positive studies at
    site north were missed (not flagged by the model) in the 7 days to Nov 3, 2026; at the 0.90 target
    about 7 would be.'"""
    value, n = evidence.get("value"), evidence.get("n")
    where = f" {segment_phrase(segment)}" if segment else " (all sites)"
    period = f"in the {window_days} days to {day(evidence.get('window_end'))}"
    estimated = bool(evidence.get("estimated")) or kind == "estimated_performance"
    if kind in ("input_drift", "output_drift"):
        what = f"the distribution of {feature}" if feature else f"the model's {metric}"
        limit = (
            f" (alert threshold {figure(evidence.get('threshold'))})" if evidence.get("threshold") is not None else ""
        )
        cases = f" over {n} studies" if n else ""
        return (
            f"{what.capitalize()}{where} moved away from the validation reference by {figure(value)}{limit}"
            f"{cases} {period}."
        )
    if metric in _PLAIN and value is not None and n and not estimated:
        cases, failure = _PLAIN[metric]
        text = f"About {round(n * (1 - value))} of {n} {cases}{where} {failure} {period}"
        if target is not None:
            text += f"; at the {target:.2f} target about {round(n * (1 - target))} would be"
        return text + "."
    prefix = "Estimated from the model's scores before outcomes are confirmed: " if estimated else ""
    against = f", against a target of {figure(target)}" if target is not None else ""
    return f"{prefix}{metric}{where} was {figure_with_interval(evidence)} {period}{against}."


def evidence_summary(evidence: dict[str, Any], metric: str, target: float | None) -> str:
    """One sentence a reviewer can check against the run."""
    against = f" against target {figure(target)}" if target is not None else ""
    method = f", method {evidence['method']}" if evidence.get("method") else ""
    run = f"run {evidence['run_id']}, " if evidence.get("run_id") is not None else ""
    return (
        f"{metric} {figure_with_interval(evidence)}{against}; status {evidence.get('status')}"
        f" ({run}window ending {when(evidence.get('window_end'))}{method})."
    )


def _render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(**context)


def _helpers() -> dict[str, Any]:
    return {"figure": figure, "figure_with_interval": figure_with_interval, "when": when, "day": day}


def render_adverse_event(alert: dict[str, Any]) -> dict[str, str]:
    """Subject, text and HTML of the email for one critical alert (alert: the view built by the outbox)."""
    context = {"alert": alert, **_helpers()}
    subject = f"[radmon {alert['severity'].upper()}] {alert['model']} {alert['version']}: {alert['headline']}"
    aliases = [member["segment_label"] for member in alert.get("aliases", [])]
    if aliases:  # the same evidence under other names: say so where the committee reads first
        named = ", ".join(aliases[:2]) + (f" and {len(aliases) - 2} more" if len(aliases) > 2 else "")
        subject += f" (also {named})"
    return {
        "subject": subject,
        "text": _render("adverse_event.txt.j2", context),
        "html": _render("adverse_event.html.j2", context),
    }


def render_digest(*, model: dict[str, Any], entries: list[dict[str, Any]], period_hours: int) -> dict[str, str]:
    """One email listing several alerts of a model (warnings, and criticals beyond the rate limit)."""
    critical = sum(1 for e in entries if e["folded_critical"])
    others = len(entries) - critical
    counts = []
    if critical:
        counts.append(f"{critical} critical alert{'s' if critical != 1 else ''}")
    if others:
        counts.append(f"{others} warning{'s' if others != 1 else ''}")
    tag = "CRITICAL digest" if critical else "digest"
    subject = f"[radmon {tag}] {model['name']}: {' and '.join(counts)}"
    context = {"model": model, "entries": entries, "period_hours": period_hours, "critical": critical, **_helpers()}
    return {
        "subject": subject,
        "text": _render("digest.txt.j2", context),
        "html": _render("digest.html.j2", context),
    }


def render_test(*, sender: str, recipient: str, transport: str, sent_at: datetime) -> dict[str, str]:
    context = {"sender": sender, "recipient": recipient, "transport": transport, "sent_at": when(sent_at)}
    return {
        "subject": "[radmon] test email",
        "text": _render("test_email.txt.j2", context),
        "html": _render("test_email.html.j2", context),
    }


def new_message_id(*, sender: str, tag: str) -> str:
    """A globally unique Message-ID in the sender's domain (generated once, when the row is written)."""
    domain = sender.rpartition("@")[2].strip(" >") or "radmon.localhost"
    return make_msgid(idstring=tag, domain=domain)


def build_message(
    *, payload: dict[str, Any], sender: str, recipient: str, message_id: str, headers: dict[str, str] | None = None
) -> EmailMessage:
    """The MIME message (text and HTML alternatives) for a stored payload: the same bytes on every attempt."""
    message = EmailMessage()
    message["Subject"] = payload["subject"]
    message["From"] = sender
    message["To"] = recipient
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(datetime.fromisoformat(payload["date"]))
    # RFC 3834: tells auto-responders (out-of-office) not to answer.
    message["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    message.policy = _UNFOLDED_HEADERS  # after the parts are encoded: only header folding changes
    return message
