"""`radmon demo`: a simulated hospital seeded through the real API, its daily checks backfilled,
its alerts delivered (to the file outbox without SMTP), then served.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy.orm import Session

from monitor import serve
from monitor.alerts import jobs as alerts_jobs
from monitor.alerts import service as alerts_service
from monitor.auth import passwords
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.checks import jobs as checks_jobs
from monitor.config import Settings, get_settings, load_settings
from monitor.db import Database
from monitor.errors import Invalid, MonitorError
from monitor.registry import service as registry_service
from monitor.registry.schemas import ModelCreate, VersionCreate
from monitor.reports import jobs as reports_jobs
from monitor.reports import service as reports_service
from monitor.reports.schemas import ReportCreate, ReportOut
from monitor.simulate import Simulation, create_simulation, default_policy

MODEL = "ich-ct"
VERSIONS = ("2.0.0", "2.1.0")
ACTIVE_VERSION = "2.1.0"
# (username, role, printed name): two approvers, so a rollback's two signatures need no admin.
ACCOUNTS = (
    ("ingest-bot", "ingest", "ICH inference service"),
    ("viewer", "viewer", "Dr. Vera Viewer"),
    ("qa", "qa", "Quinn Assurance (QA lead)"),
    ("approver", "approver", "Dr. Abel Approver"),
    ("approver2", "approver", "Dr. Bea Second-Approver"),
    ("admin", "admin", "Ada Admin"),
)
# Each site has a main scanner vendor (and some of the others), as hospitals do.
PER_DAY = 300
SCENARIO = "demo"  # monitor.simulate.PRESETS: scanner change at north (day 45) and friends
RECIPIENTS = ["ai-committee@hospital.example"]
REFERENCE_ROWS = 5000


class DemoError(MonitorError):
    code = "demo"


@dataclass(frozen=True)
class Account:
    role: str
    username: str
    password: str | None
    api_key: str


# ---------------------------------------------------------------------------- traffic


def demo_simulation(*, days: int, seed: int, now: datetime) -> Simulation:
    """The demo hospital's traffic: the simulator's `demo` preset (a scanner change at the north
    site on day 45, a prevalence shift on day 60, an older population from day 30) over the
    `days` days that end at today's midnight (UTC) before `now`."""
    end = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return create_simulation(
        scenario=SCENARIO,
        days=days,
        per_day=PER_DAY,
        seed=seed,
        model=MODEL,
        version=ACTIVE_VERSION,
        start=end - timedelta(days=days),
    )


def synthetic_traffic(*, days: int, seed: int, now: datetime) -> tuple[list[dict], list[dict]]:
    """Inference records of the demo's days and the outcomes confirmed by `now`."""
    simulation = demo_simulation(days=days, seed=seed, now=now)
    return simulation.inferences(), simulation.outcomes(as_of=now)


# ---------------------------------------------------------------------------- set-up


def listening_port(host: str, port: int) -> int:
    """The port the demo will serve on: `port`, or a free one for 0 (known before the app is built,
    so the dashboard URL in the emails can name it)."""
    if port:
        return port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def own_url(host: str, port: int) -> str:
    """http://host:port as a browser on this machine reaches it (0.0.0.0 and :: answer on loopback)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


def demo_settings(db_path: Path, *, dashboard_url: str | None = None) -> Settings:
    """Demo settings (no secret needed), also exported so every get_settings() agrees; the dashboard
    URL (links in the alert emails) is the demo's own address."""
    url = f"sqlite:///{db_path.resolve()}"
    os.environ["RADMON_DEMO"] = "true"
    os.environ["RADMON_DATABASE_URL"] = url
    # The file outbox (no SMTP in the demo) sits beside the database, printed as an absolute path.
    outbox = str(db_path.resolve().parent / "radmon-outbox")
    os.environ["RADMON_OUTBOX_DIR"] = outbox
    overrides: dict[str, object] = {}
    if dashboard_url:
        os.environ["RADMON_DASHBOARD_URL"] = dashboard_url
        overrides["dashboard_url"] = dashboard_url
    get_settings.cache_clear()
    return load_settings(demo=True, database_url=url, outbox_dir=outbox, **overrides)


def fresh_database(db_path: Path, settings: Settings) -> Database:
    """Delete the previous demo file (with its WAL) and migrate a new one."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return serve.open_database(settings)


def _random_password(username: str) -> str:
    """A random password the policy accepts: a random one can contain a short username ("qa") by chance."""
    while True:
        candidate = secrets.token_urlsafe(9)
        try:
            passwords.check_password(username=username, password=candidate)
        except Invalid:
            continue
        return candidate


def create_accounts(session: Session) -> list[Account]:
    """A user and API key per account (one per role, two approvers); random passwords (the demo may
    listen beyond localhost)."""
    accounts = []
    for username, role, full_name in ACCOUNTS:
        password = None if role == "ingest" else _random_password(username)
        auth_service.create_user(
            session=session,
            actor=SYSTEM,
            username=username,
            role=role,
            password=password,
            full_name=full_name,
            email=f"{username}@hospital.example",
        )
        _, key = auth_service.create_api_key(session=session, actor=SYSTEM, username=username, name="demo")
        accounts.append(Account(role, username, password, key))
    return accounts


def register_model(session: Session, *, seed: int, now: datetime) -> None:
    """The ICH head-CT model with two versions (the simulator's fitted classifiers), 2.1.0 active,
    and the monitoring policy for the simulator's features."""
    registry_service.create_model(
        session=session,
        actor=SYSTEM,
        data=ModelCreate(
            name=MODEL,
            display_name="Intracranial hemorrhage triage (head CT)",
            modality="CT",
            body_part="HEAD",
            intended_use="Prioritise non-contrast head CT with suspected intracranial hemorrhage for radiologist review.",
            alert_recipients=RECIPIENTS,
        ),
    )
    for version in VERSIONS:
        spec = create_simulation(days=1, seed=seed, model=MODEL, version=version, start=now).version_spec()
        registry_service.create_version(session=session, actor=SYSTEM, model_name=MODEL, data=VersionCreate(**spec))
    registry_service.activate_first(
        session=session, actor=SYSTEM, model_name=MODEL, version=ACTIVE_VERSION, reason="demo go-live"
    )


# ---------------------------------------------------------------------------- ingestion


def ingest(base_url: str, api_key: str, inferences: list[dict], outcomes: list[dict]) -> dict[str, int]:
    """Post the traffic as an inference service would; fail if the API rejected any of it."""
    from monitor.client import RadmonClient, RadmonError

    try:
        with RadmonClient(base_url, api_key) as client:
            sent_inferences = client.log_inferences(inferences, batch_size=2000)
            sent_outcomes = client.log_outcomes(outcomes, batch_size=2000)
    except RadmonError as exc:
        raise DemoError(f"the API refused the demo traffic: {exc}") from None
    for kind, answer in (("inference", sent_inferences), ("outcome", sent_outcomes)):
        if answer["rejected"]:
            first = answer["rejected"][0]
            raise DemoError(f"{len(answer['rejected'])} {kind} records rejected; first: {first}")
    return {"inferences": sent_inferences["delivered"], "outcomes": sent_outcomes["delivered"]}


# ---------------------------------------------------------------------------- output


def accounts_table(accounts: list[Account]) -> Table:
    table = Table("role", "username", "password", "API key", title="Demo accounts (this run only)")
    for account in accounts:
        table.add_row(account.role, account.username, account.password or "(API key only)", account.api_key)
    return table


def configure_monitoring(base_url: str, qa_key: str, simulation: Simulation) -> None:
    """The monitoring policy and the validation reference, through the API as a QA physicist would."""
    headers = {"Authorization": f"Bearer {qa_key}"}
    with httpx.Client(base_url=f"{base_url}/api/v1", headers=headers, timeout=120) as api:
        policy = api.put(f"/models/{MODEL}/policy", json={**default_policy(), "alert_recipients": RECIPIENTS})
        reference = api.post(
            f"/models/{MODEL}/versions/{ACTIVE_VERSION}/reference",
            json={"records": simulation.reference(REFERENCE_ROWS)},
        )
    for step, answer in (("policy", policy), ("reference upload", reference)):
        if answer.status_code >= 300:
            raise DemoError(f"the API refused the demo {step}: {answer.status_code} {answer.text[:300]}")


def backfill_checks(database: Database, simulation: Simulation, out: Console) -> int:
    """Every daily check since the traffic began, as the scheduler would have run them."""
    first = simulation.start + timedelta(days=1)
    ends = [first + timedelta(days=i) for i in range((simulation.end - first).days + 1)]
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("Backfilling the daily checks", total=len(ends))
        made = checks_jobs.backfill(
            MODEL, ends, database=database, on_window=lambda _end, _runs: progress.advance(task)
        )
    return made


def open_alerts_table(database: Database) -> Table:
    table = Table("severity", "kind", "metric", "feature / segment", "breaching since", "also", title="Open incidents")
    with database.transaction() as session:
        alerts = alerts_service.list_alerts(session=session, actor=SYSTEM, status="open", model=MODEL)
    order = {"critical": 0, "warning": 1, "info": 2}
    for alert in sorted(alerts, key=lambda a: (order.get(a.severity, 3), a.breaching_since))[:12]:
        where = alert.segment or alert.feature or ""
        also = ", ".join(m.segment or m.feature or m.kind for m in [*alert.aliases, *alert.linked_evidence])
        table.add_row(alert.severity, alert.kind, alert.metric, where, alert.breaching_since.date().isoformat(), also)
    if len(alerts) > 12:
        table.caption = f"... and {len(alerts) - 12} more on the dashboard's Alerts page"
    return table


def draft_report(database: Database, settings: Settings, now: datetime) -> ReportOut:
    """Last month's surveillance report as a draft, as the scheduler drafts it on the 1st (decision 0604), so the
    Reports page has one for the QA lead to review and sign. The model is registered today (the simulated traffic
    reaches back), so the scheduler's job would skip it as registered after the period."""
    start, end = reports_jobs.last_month(now, settings.facility_timezone)
    with database.transaction() as session:
        result = reports_service.generate(
            session=session,
            actor=SYSTEM,
            data=ReportCreate(model=MODEL, period_start=start, period_end=end),
            approval_required=settings.report_approval_required,
            now=now,
        )
    assert result.refusal is None and result.report is not None
    return result.report


def run(
    *, db_path: Path, days: int, host: str, port: int, seed: int, serve_forever: bool, out: Console
) -> dict[str, int]:
    """Seed the demo, backfill its checks, deliver its alerts, then serve it (or return the
    counts with serve_forever=False)."""
    port = listening_port(host, port)
    settings = demo_settings(db_path, dashboard_url=f"{own_url(host, port)}/dashboard/")
    serve.configure_server_logging(settings, level="WARNING")  # quiet while seeding: the console tells
    database = fresh_database(db_path, settings)
    now = datetime.now(UTC)
    simulation = demo_simulation(days=days, seed=seed, now=now)
    with database.transaction() as session:
        accounts = create_accounts(session)
        register_model(session, seed=seed, now=now)
    out.print(accounts_table(accounts))
    server = serve.BackgroundServer(serve.build_app(settings, serve.Role.ALL), host=host, port=port)
    bound = server.start()
    scheduler = None
    base_url = own_url(host, bound)
    key = {account.role: account.api_key for account in accounts}
    try:
        configure_monitoring(base_url, key["qa"], simulation)
        inferences, outcomes = simulation.inferences(), simulation.outcomes(as_of=now)
        out.print(f"Posting {len(inferences)} inferences and {len(outcomes)} outcomes through {base_url}/api/v1 ...")
        counts = ingest(base_url, key["ingest"], inferences, outcomes)
        out.print(f"Stored {counts['inferences']} inferences and {counts['outcomes']} outcomes in {db_path}.")
        counts["runs"] = backfill_checks(database, simulation, out)
        report = alerts_jobs.deliver_due(database=database, settings=settings)
        out.print(
            f"Ran {counts['runs']} check runs over {days} days of traffic (scenarios: {' + '.join(simulation.summary()['scenarios'])})."
        )
        out.print(open_alerts_table(database))
        drafted = draft_report(database, settings, now)
        out.print(
            f"Drafted the surveillance report {drafted.period_start} to {drafted.period_end} ({drafted.pages} pages), "
            "awaiting the QA lead's signature on the Reports page."
        )
        for path in report.files:
            out.print(f"Alert email written to {path}")
        if not serve_forever:
            return counts
        serve.configure_server_logging(settings)
        scheduler = serve.start_background_scheduler(database)
        out.print(f"Dashboard: {base_url}/dashboard/   API docs: {base_url}/api/docs   (Ctrl-C stops)")
        server.wait()
        return counts
    finally:
        server.stop()
        if scheduler is not None:
            serve.stop_scheduler(scheduler)
        database.dispose()
