"""Email wording: subject lines a reader understands, escaped HTML, a stable MIME message."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from monitor.alerts import emails


@pytest.mark.parametrize(
    ("kind", "metric", "feature", "segment", "value", "threshold", "estimated", "expected"),
    [
        ("subgroups", "sensitivity", None, "site=north", 0.78, 0.9, False, "sensitivity below target at site north"),
        ("performance", "auc", None, None, 0.81, 0.85, False, "auc below target"),
        (
            "subgroups",
            "specificity",
            None,
            "site=north&manufacturer=GE",
            0.7,
            0.8,
            False,
            "specificity below target at site north, manufacturer GE",
        ),
        (
            "subgroups",
            "sensitivity",
            None,
            "patient_sex=F",
            0.8,
            0.9,
            False,
            "sensitivity below target for patient_sex F",
        ),
        ("performance", "ece", None, None, 0.12, 0.05, False, "ece above target"),
        ("estimated_performance", "sensitivity", None, None, 0.8, 0.9, True, "estimated sensitivity below target"),
        ("input_drift", "drift_score", "kvp", None, 0.3, 0.1, False, "input drift in kvp"),
        ("output_drift", "positive_rate", None, None, 0.3, 0.1, False, "output drift (positive_rate)"),
    ],
)
def test_headline(
    kind: str,
    metric: str,
    feature: str | None,
    segment: str | None,
    value: float,
    threshold: float,
    estimated: bool,
    expected: str,
) -> None:
    assert (
        emails.headline(
            kind=kind,
            metric=metric,
            feature=feature,
            segment=segment,
            value=value,
            threshold=threshold,
            estimated=estimated,
        )
        == expected
    )


def test_html_part_escapes_what_came_from_the_data() -> None:
    view = {
        "id": 7,
        "event": "opened",
        "model": "ich-ct",
        "model_display_name": "ICH <triage>",
        "version": "2.1.0",
        "kind": "subgroups",
        "kind_label": "subgroup performance",
        "kind_explanation": "",
        "severity": "critical",
        "status": "open",
        "fingerprint": "f" * 64,
        "metric": "sensitivity",
        "feature": None,
        "segment": "manufacturer=<script>alert(1)</script>",
        "segment_label": "manufacturer=<script>alert(1)</script>",
        "headline": "sensitivity below target",
        "first_seen": None,
        "last_seen": None,
        "occurrences": 1,
        "evidence": {
            "value": 0.7,
            "ci_low": 0.6,
            "ci_high": 0.8,
            "n": 40,
            "status": "breach",
            "method": None,
            "estimated": False,
        },
        "target": 0.9,
        "evidence_summary": "s",
        "link": "https://x.example/dashboard/alerts?id=7",
        "measured": "About 12 of 40 confirmed positive studies for manufacturer <b>x</b> were missed.",
        "breaching_since": None,
        "breaching_since_source": "window",
        "window_start": None,
        "window_end": None,
        "window_days": 7,
        "aliases": [
            {
                "segment_label": "site=<img src=x>",
                "metric": "sensitivity",
                "figure": "0.700",
                "reason": "the same studies as <i>x</i>",
                "link": "https://x.example/dashboard/alerts?id=8",
            }
        ],
        "linked_evidence": [],
    }
    content = emails.render_adverse_event(view)
    assert "<script>" not in content["html"] and "&lt;script&gt;" in content["html"]
    assert "<img" not in content["html"] and "<b>" not in content["html"] and "<i>" not in content["html"]
    assert "<script>alert(1)</script>" in content["text"]  # plain text is not HTML


def test_message_has_both_parts_and_an_unfolded_subject() -> None:
    subject = "[radmon CRITICAL] ich-ct 2.1.0: sensitivity below target at site north, manufacturer GE"
    payload = {"subject": subject, "text": "plain é", "html": "<p>html</p>", "date": "2026-11-02T03:00:00+00:00"}
    message = emails.build_message(
        payload=payload,
        sender="radmon@hospital.example",
        recipient="qa@hospital.example",
        message_id="<1@hospital.example>",
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Subject"] == subject and parsed["Message-ID"] == "<1@hospital.example>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_body(("plain",)).get_content().strip() == "plain é"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>html</p>"
