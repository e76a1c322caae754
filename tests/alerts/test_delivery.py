"""Delivery against a real SMTP server (aiosmtpd in this process): nothing lost, nothing sent twice.

These tests commit (the delivery job opens its own transactions), so each gets a fresh database.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select

from monitor.alerts import delivery, jobs
from monitor.alerts.models import Alert, DigestItem, Notification, NotificationAttempt
from monitor.audit.models import AuditEvent
from monitor.config import Settings
from monitor.db import Database
from tests.alerts.conftest import RECIPIENTS, SmtpServer, alert_settings, day, drift, finding, fire, free_port, seed

NOW = day(0) + timedelta(hours=1)


def smtp_settings(tmp_path: Path, database: Database, port: int, **overrides: Any) -> Settings:
    return alert_settings(tmp_path, database.url, smtp_host="127.0.0.1", smtp_port=port, **overrides)


def seeded(database: Database, **policy: Any) -> Database:
    with database.transaction() as session:
        seed(session, **policy)
    return database


def count(database: Database, query: Any) -> int:
    with database.transaction() as session:
        return session.execute(query).scalar_one()


def text_and_html(message: Any) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_the_critical_email_arrives_and_carries_every_field(
    fresh_database: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config = smtp_settings(tmp_path, seeded(fresh_database), smtp_server.port)
    [alert_id] = fire(fresh_database, config, [finding(run_id=41)], now=NOW)

    report = jobs.deliver_due(database=fresh_database, settings=config, now=NOW)

    assert report.sent == 1
    [received] = smtp_server.mailbox.received
    message = received.message
    assert received.recipients == RECIPIENTS and received.envelope_from == "radmon@hospital.example"
    assert message["Subject"] == "[radmon CRITICAL] ich-ct 2.1.0: sensitivity below target at site north"
    assert message["To"] == RECIPIENTS[0] and message["From"] == "radmon@hospital.example"
    assert message["X-Radmon-Alert"] == str(alert_id)
    assert message.is_multipart()
    link = f"https://radmon.hospital.example/dashboard/alerts?id={alert_id}"
    text, html = text_and_html(message)
    for part in (text, html):
        assert "ICH triage (head CT)" in part and "ich-ct" in part
        assert "2.1.0" in part
        assert "sensitivity" in part and "subgroup performance" in part
        assert "0.781" in part and "95% CI 0.702-0.846" in part and "n=212" in part
        assert "0.900" in part  # the target
        assert "site=north" in part
        assert "2026-11-02 02:00 UTC" in part  # first seen: end of the first breaching window
        assert "run 41" in part  # evidence summary names the run
        assert link in part
        assert "Acknowledge" in part or "acknowledge" in part
        assert "rollback" in part
    with fresh_database.transaction() as session:
        row = session.execute(select(Notification)).scalar_one()
        assert row.status == "sent" and row.message_id == message["Message-ID"]
        event = session.execute(select(AuditEvent).where(AuditEvent.action == "notification.sent")).scalar_one()
        assert event.entity_id == str(row.id) and event.after["recipient"] == RECIPIENTS[0]


def test_smtp_outage_during_20_critical_alerts_then_recovery_delivers_each_exactly_once(
    fresh_database: Database, tmp_path: Path
) -> None:
    server = SmtpServer(free_port())  # not started: the mail server is down
    config = smtp_settings(tmp_path, seeded(fresh_database, critical_emails_per_hour=50), server.port)
    sites = [f"site=s{n:02d}" for n in range(20)]
    fire(fresh_database, config, [finding(segment=site) for site in sites], now=NOW)
    assert count(fresh_database, select(func.count()).select_from(Notification)) == 20

    for minute in (0, 5, 30):  # three rounds of the job during the outage
        report = jobs.deliver_due(database=fresh_database, settings=config, now=NOW + timedelta(minutes=minute))
        assert report.sent == 0 and report.stopped == ["email"]
    failed = count(
        fresh_database,
        select(func.count()).select_from(NotificationAttempt).where(NotificationAttempt.outcome == "failed"),
    )
    assert failed == 3
    with fresh_database.transaction() as session:
        errors = session.execute(select(NotificationAttempt.error)).scalars().all()
    assert all("cannot reach SMTP server 127.0.0.1" in e for e in errors)

    server.start()
    try:
        later = NOW + timedelta(hours=3)  # past every backoff
        report = jobs.deliver_due(database=fresh_database, settings=config, now=later)
        assert report.sent == 20
        assert jobs.deliver_due(database=fresh_database, settings=config, now=later + timedelta(hours=1)).sent == 0
        messages = server.mailbox.messages
    finally:
        server.stop()

    assert len(messages) == 20
    assert len({m["Message-ID"] for m in messages}) == 20
    assert sorted(m["Subject"].rsplit("at site ", 1)[1] for m in messages) == sorted(s.split("=")[1] for s in sites)
    with fresh_database.transaction() as session:
        statuses = Counter(session.execute(select(Notification.status)).scalars())
        attempts = Counter(session.execute(select(NotificationAttempt.outcome)).scalars())
    assert statuses == {"sent": 20}
    assert attempts == {"sent": 20, "failed": 3}


def test_the_same_breach_on_ten_daily_runs_sends_one_email(
    fresh_database: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config = smtp_settings(tmp_path, seeded(fresh_database), smtp_server.port)
    for n in range(10):
        now = day(n) + timedelta(hours=1)
        fire(fresh_database, config, [finding(window_end=day(n), run_id=n + 1)], now=now)
        jobs.deliver_due(database=fresh_database, settings=config, now=now)
    with fresh_database.transaction() as session:
        alert = session.execute(select(Alert)).scalar_one()
        assert alert.occurrences == 10
    assert len(smtp_server.mailbox.messages) == 1


def test_a_crash_between_send_and_record_resends_once_with_the_same_message_id(
    fresh_database: Database, smtp_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = smtp_settings(tmp_path, seeded(fresh_database), smtp_server.port)
    fire(fresh_database, config, [finding()], now=NOW)
    real_record = delivery.record

    def crash(**_kwargs: Any) -> str:
        raise SystemExit("killed after sending, before recording")

    monkeypatch.setattr(delivery, "record", crash)
    with pytest.raises(SystemExit):
        jobs.deliver_due(database=fresh_database, settings=config, now=NOW)
    monkeypatch.setattr(delivery, "record", real_record)
    assert len(smtp_server.mailbox.messages) == 1

    # Within the lease nobody touches the row; after it another worker sends it once more.
    assert jobs.deliver_due(database=fresh_database, settings=config, now=NOW + timedelta(minutes=5)).sent == 0
    after_lease = NOW + delivery.LEASE + timedelta(seconds=1)
    assert jobs.deliver_due(database=fresh_database, settings=config, now=after_lease).sent == 1
    assert jobs.deliver_due(database=fresh_database, settings=config, now=after_lease + timedelta(hours=2)).sent == 0

    first, second = smtp_server.mailbox.messages
    assert first["Message-ID"] == second["Message-ID"]
    with fresh_database.transaction() as session:
        outcomes = (
            session.execute(select(NotificationAttempt.outcome).order_by(NotificationAttempt.number)).scalars().all()
        )
    assert outcomes == ["interrupted", "sent"]


def test_two_delivering_workers_never_send_the_same_row(
    fresh_database: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config = smtp_settings(tmp_path, seeded(fresh_database, critical_emails_per_hour=100), smtp_server.port)
    fire(fresh_database, config, [finding(segment=f"site=s{n:02d}") for n in range(30)], now=NOW)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            reports.append(jobs.deliver_due(database=fresh_database, settings=config, now=NOW, worker=name))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"worker-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sum(r.sent for r in reports) == 30
    ids = [m["Message-ID"] for m in smtp_server.mailbox.messages]
    assert len(ids) == 30 and len(set(ids)) == 30
    with fresh_database.transaction() as session:
        assert session.execute(select(func.count()).select_from(NotificationAttempt)).scalar_one() == 30


def test_warnings_go_out_as_one_digest_per_period(
    fresh_database: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config = smtp_settings(tmp_path, seeded(fresh_database, digest_hours=6), smtp_server.port)
    fire(fresh_database, config, [drift("kvp"), drift("mean_hu"), drift("noise_sd")], now=NOW)  # 03:00 UTC
    before_boundary = NOW + timedelta(hours=2, minutes=59)
    assert jobs.deliver_due(database=fresh_database, settings=config, now=before_boundary).sent == 0
    report = jobs.deliver_due(database=fresh_database, settings=config, now=NOW + timedelta(hours=3))  # 06:00
    assert (report.digests, report.sent) == (1, 1)
    [digest] = smtp_server.mailbox.messages
    assert digest["Subject"] == "[radmon digest] ich-ct: 3 warnings"
    text, html = text_and_html(digest)
    for feature in ("kvp", "mean_hu", "noise_sd"):
        assert f"input drift in {feature}" in text and f"input drift in {feature}" in html
    assert "https://radmon.hospital.example/dashboard/alerts?id=" in text
    # the next round has nothing left to digest
    assert jobs.deliver_due(database=fresh_database, settings=config, now=NOW + timedelta(hours=9)).digests == 0


def test_rate_limit_folds_criticals_into_the_next_digest_without_losing_any(
    fresh_database: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config = smtp_settings(tmp_path, seeded(fresh_database, critical_emails_per_hour=2), smtp_server.port)
    sites = ["north", "south", "east", "west", "central"]
    fire(fresh_database, config, [finding(segment=f"site={site}") for site in sites], now=NOW)
    assert jobs.deliver_due(database=fresh_database, settings=config, now=NOW).sent == 2
    with fresh_database.transaction() as session:
        folded = session.execute(select(DigestItem.reason)).scalars().all()
    assert folded == ["rate_limited"] * 3

    report = jobs.deliver_due(database=fresh_database, settings=config, now=NOW + timedelta(hours=1))  # next full hour
    assert (report.digests, report.sent) == (1, 1)
    individual = [m for m in smtp_server.mailbox.messages if "digest" not in m["Subject"]]
    [digest] = [m for m in smtp_server.mailbox.messages if "digest" in m["Subject"]]
    assert len(individual) == 2
    assert digest["Subject"] == "[radmon CRITICAL digest] ich-ct: 3 critical alerts"
    text, _ = text_and_html(digest)
    mentioned = {site for site in sites if f"at site {site}" in text}
    emailed = {m["Subject"].rsplit("at site ", 1)[1] for m in individual}
    assert mentioned | emailed == set(sites) and not (mentioned & emailed)


def test_a_permanent_refusal_is_dead_lettered_and_audited(
    fresh_database: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.mailbox.refuse[RECIPIENTS[0]] = "550 5.1.1 mailbox unavailable"
    config = smtp_settings(tmp_path, seeded(fresh_database), smtp_server.port)
    fire(fresh_database, config, [finding()], now=NOW)
    report = jobs.deliver_due(database=fresh_database, settings=config, now=NOW)
    assert report.dead == 1
    with fresh_database.transaction() as session:
        row = session.execute(select(Notification)).scalar_one()
        event = session.execute(select(AuditEvent).where(AuditEvent.action == "notification.failed")).scalar_one()
    assert row.status == "dead" and "550" in (row.last_error or "")
    assert event.entity_id == str(row.id) and "mailbox unavailable" in (event.reason or "")


def test_without_an_smtp_host_emails_are_written_to_the_outbox_directory(
    fresh_database: Database, tmp_path: Path
) -> None:
    config = alert_settings(tmp_path, fresh_database.url)
    seeded(fresh_database)
    fire(fresh_database, config, [finding()], now=NOW)
    report = jobs.deliver_due(database=fresh_database, settings=config, now=NOW)
    [path] = report.files
    assert Path(path).parent == tmp_path / "outbox" and path.endswith(".eml")
    from email import message_from_bytes, policy

    message = message_from_bytes(Path(path).read_bytes(), policy=policy.default)
    assert message["Subject"].startswith("[radmon CRITICAL] ich-ct 2.1.0")


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def test_webhook_is_signed_with_hmac_sha256_and_verifiable(
    fresh_database: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    _Receiver.received = []
    http = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        secret = "hospital-shared-secret"
        config = smtp_settings(
            tmp_path,
            seeded(fresh_database),
            smtp_server.port,
            webhook_url=f"http://127.0.0.1:{http.server_port}/radmon",
            webhook_secret=secret,
        )
        [alert_id] = fire(fresh_database, config, [finding()], now=NOW)
        report = jobs.deliver_due(database=fresh_database, settings=config, now=NOW)
    finally:
        http.shutdown()
    assert report.sent == 2  # the email and the webhook
    [(headers, body)] = _Receiver.received
    assert delivery.verify_signature(secret=secret, header=headers["X-Radmon-Signature"], body=body)
    assert not delivery.verify_signature(secret=secret, header=headers["X-Radmon-Signature"], body=body + b" ")
    assert not delivery.verify_signature(secret="wrong", header=headers["X-Radmon-Signature"], body=body)
    payload = json.loads(body)
    assert payload["event"] == "alert.opened" and payload["alert"]["id"] == alert_id
    assert payload["alert"]["severity"] == "critical" and headers["X-Radmon-Event"] == "alert.opened"
    assert headers["X-Radmon-Delivery"].startswith("<")


def test_test_email_reports_success_and_failure_clearly(smtp_server: SmtpServer, tmp_path: Path) -> None:
    config = alert_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_server.port)
    ok = jobs.send_test_email(to="qa@hospital.example", settings=config)
    assert ok.ok and ok.channel == "smtp" and "qa@hospital.example" in ok.detail
    [message] = smtp_server.mailbox.messages
    assert message["Subject"] == "[radmon] test email" and message["Message-ID"] == ok.message_id

    down = alert_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=free_port())
    failed = jobs.send_test_email(to="qa@hospital.example", settings=down)
    assert not failed.ok and "cannot reach SMTP server 127.0.0.1" in failed.detail

    to_file = jobs.send_test_email(to="qa@hospital.example", settings=alert_settings(tmp_path))
    assert to_file.ok and to_file.channel == "file" and str(tmp_path / "outbox") in to_file.detail
