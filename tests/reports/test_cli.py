"""`radmon reports`: generate a month or any period, list, download the PDF; clear one-line errors,
and a signed period refused (the refusal committed to the audit trail)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from monitor.audit.models import AuditEvent
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.db import Database
from monitor.reports import service as reports_service
from monitor.reports.schemas import ReportSign
from tests.factories import PASSWORD, make_model, make_version
from tests.test_cli import database_url, empty_url, environment, one_line_error, radmon  # noqa: F401 (fixtures)


@pytest.fixture
def seeded(database_url: str) -> Database:  # noqa: F811
    database = Database(database_url)
    with database.transaction() as session:
        make_model(session)
        make_version(session, activate=True)
        auth_service.create_user(session=session, actor=SYSTEM, username="qa-lead", role="qa", password=PASSWORD)
    yield database  # type: ignore[misc]
    database.dispose()


def test_generate_a_month_list_and_download_it(seeded: Database, tmp_path: Path) -> None:
    generated = radmon("reports", "generate", "--model", "ich-ct", "--period", "2026-10")
    assert generated.exit_code == 0, generated.output
    assert "2026-10-01 .. 2026-10-31" in generated.stdout and "draft" in generated.stdout
    assert "awaits the QA lead's signature" in generated.stdout

    custom = radmon("reports", "generate", "--model", "ich-ct", "--from", "2026-09-01", "--to", "2026-09-15")
    assert custom.exit_code == 0, custom.output

    listing = radmon("reports", "list", "--model", "ich-ct")
    assert listing.exit_code == 0
    assert listing.stdout.index("2026-10-01 .. 2026-10-31") < listing.stdout.index("2026-09-01 .. 2026-09-15")

    with seeded.transaction() as session:
        (october, _) = reports_service.list_reports(session=session, actor=SYSTEM, model_name="ich-ct")
    downloaded = radmon("reports", "download", "--id", str(october.id), "--out", str(tmp_path))
    assert downloaded.exit_code == 0, downloaded.output
    written = tmp_path / "radmon-report-ich-ct-2026-10-01-to-2026-10-31-r1-draft.pdf"
    assert written.read_bytes().startswith(b"%PDF")
    assert hashlib.sha256(written.read_bytes()).hexdigest() == october.sha256 and october.sha256 in downloaded.stdout


def test_a_signed_period_is_refused_and_the_refusal_kept(seeded: Database) -> None:
    assert radmon("reports", "generate", "--model", "ich-ct", "--period", "2026-10").exit_code == 0
    with seeded.transaction() as session:
        (report,) = reports_service.list_reports(session=session, actor=SYSTEM)
        qa = auth_service.actor_for(auth_service.get_user(session=session, username="qa-lead"))
        signed = reports_service.sign(
            session=session, actor=qa, report_id=report.id, data=ReportSign(password=SecretStr(PASSWORD))
        )
        assert signed.refusal is None
    refused = one_line_error(radmon("reports", "generate", "--model", "ich-ct", "--period", "2026-10"))
    assert "signed and immutable" in refused and "new revision" in refused
    with seeded.transaction() as session:
        actions = session.execute(select(AuditEvent.action).where(AuditEvent.entity == "surveillance_report")).scalars()
        assert list(actions)[-1] == "report.refused"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--period", "2026-13"], "YYYY-MM"),
        (["--period", "2026-10", "--from", "2026-10-01"], "not both"),
        ([], "give --period"),
        (["--from", "2026-10-31", "--to", "2026-10-01"], "before period_start"),
        (["--period", "2999-01"], "after today"),
    ],
)
def test_bad_periods_fail_in_one_line(seeded: Database, args: list[str], fragment: str) -> None:
    assert fragment in one_line_error(radmon("reports", "generate", "--model", "ich-ct", *args))


def test_unknown_model_and_report_fail_in_one_line(seeded: Database, tmp_path: Path) -> None:
    assert "nope" in one_line_error(radmon("reports", "generate", "--model", "nope", "--period", "2026-10"))
    assert "#42" in one_line_error(radmon("reports", "download", "--id", "42", "--out", str(tmp_path)))
