"""The `radmon` command: serve, demo, schema, users, API keys and the audit trail.

Each command is a transaction boundary: it opens the database from the RADMON_ settings,
acts as the system actor through the services, and commits. User errors end with a one-line
reason on stderr and a non-zero exit, never a traceback. Later command groups (simulate,
checks, alerts) are typer sub-apps added with `app.add_typer` like the ones below.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.config import Settings, get_settings, load_settings
from monitor.db import Database, set_database
from monitor.errors import MonitorError
from monitor.serve import Role, require_schema_at_head, schema_heads

F = TypeVar("F", bound=Callable[..., Any])

# Exit 1 = the command failed (bad input, bad configuration, broken audit chain); an error
# class may carry its own `exit_code` (RoleUnavailable: 2, like typer's usage errors).
EXIT_FAILED = 1

app = typer.Typer(
    name="radmon",
    help="Post-deployment monitoring for radiology ML models. Configuration comes from RADMON_ variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
users_app = typer.Typer(help="People and service accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (shown once at creation, stored hashed).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
alerts_app = typer.Typer(help="Alert emails and webhooks.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
checks_app = typer.Typer(help="Monitoring checks: run one window now, or backfill past windows.", no_args_is_help=True)
app.add_typer(checks_app, name="checks")
reports_app = typer.Typer(
    help="Surveillance reports: generate a period's draft, list them, download a PDF.", no_args_is_help=True
)
app.add_typer(reports_app, name="reports")
adverse_app = typer.Typer(help="Reportable adverse events: their report deadlines and reminders.", no_args_is_help=True)
app.add_typer(adverse_app, name="adverse")


# ---------------------------------------------------------------------------- plumbing


def console() -> Console:
    """Rich output on the current stdout; wide when piped so keys and hashes are not folded."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out.width = 200
    return out


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print the reason on stderr as one line; raise the returned Exit."""
    one_line = " ".join(str(message).split())
    typer.echo(f"error: {one_line}", err=True)
    return typer.Exit(code)


def _database_error(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None) or exc
    reason = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    return f"database error: {reason}"


def reports_errors(command: F) -> F:
    """Turn domain, configuration and database errors into a one-line reason and exit 1 (or 2)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MonitorError as exc:
            raise fail(exc.message, getattr(exc, "exit_code", EXIT_FAILED)) from None
        except SQLAlchemyError as exc:
            raise fail(_database_error(exc)) from None

    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    """Settings read now (not the cached ones): each invocation sees the current environment."""
    return load_settings()


@contextmanager
def opened(config: Settings) -> Iterator[Database]:
    """The database for one command, installed as the process-wide one while it runs."""
    database = Database(config.database_url)
    previous = set_database(database)
    # Services deep in a command (the audit chain's key) read the process settings: the same environment.
    get_settings.cache_clear()
    try:
        yield database
    finally:
        set_database(previous)
        database.dispose()
        get_settings.cache_clear()


@contextmanager
def transaction() -> Iterator[Session]:
    """One committed transaction on a schema at head (the CLI is a transaction boundary)."""
    with opened(settings()) as database:
        require_schema_at_head(database)
        with database.transaction() as session:
            yield session


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else ""


# ---------------------------------------------------------------------------- serve, demo


@app.command()
@reports_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 in a container).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    role: Annotated[
        Role,
        typer.Option(
            help="all = API + dashboard + scheduler in one process (the embedded default); "
            "api, dashboard or scheduler alone (production: one service each).",
        ),
    ] = Role.ALL,
) -> None:
    """Serve the API (/api/v1, docs at /api/docs), the dashboard (/dashboard/) and the scheduled jobs."""
    from monitor import serve as serving

    serving.run(settings(), role=role, host=host, port=port)


@app.command()
@reports_errors
def demo(
    days: Annotated[
        int, typer.Option(min=1, max=365, help="Days of simulated traffic to seed (the scanner change is on day 45).")
    ] = 90,
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    db: Annotated[Path, typer.Option(help="SQLite file, deleted and recreated on each run.")] = Path("radmon-demo.db"),
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic traffic.")] = 7,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Exit after seeding instead of serving.")] = False,
) -> None:
    """Seed a demo hospital in a fresh SQLite file, through the real API, and serve it."""
    from monitor import demo as demo_module

    demo_module.run(db_path=db, days=days, host=host, port=port, seed=seed, serve_forever=not no_serve, out=console())


# ---------------------------------------------------------------------------- db


@db_app.command("upgrade")
@reports_errors
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the schema up to REVISION (default: the newest)."""
    from monitor import migrate

    with opened(settings()) as database:
        before = migrate.current(database.engine)
        migrate.upgrade(database.engine, revision)
        after = migrate.current(database.engine)
    typer.echo(f"schema upgraded: {before or 'empty'} -> {after}" if before != after else f"schema already at {after}")


@db_app.command("downgrade")
@reports_errors
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision ('base' empties the schema).")]) -> None:
    """Migrate the schema down to REVISION."""
    from monitor import migrate

    with opened(settings()) as database:
        before = migrate.current(database.engine)
        migrate.downgrade(database.engine, revision)
        after = migrate.current(database.engine)
    typer.echo(f"schema downgraded: {before or 'empty'} -> {after or 'empty'}")


@db_app.command("create-app-role")
@reports_errors
def db_create_app_role(
    role: Annotated[str, typer.Option(help="The PostgreSQL role the servers will connect as.")] = "radmon_app",
    password_env: Annotated[
        str | None, typer.Option(help="Read the role's password from this environment variable (e.g. in compose).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the role's password from the first line of stdin.")
    ] = False,
) -> None:
    """Create or refresh the least-privilege role for the servers (run as the schema owner, after each upgrade).

    The role may read and write rows but owns nothing (no DDL, so it cannot disable the audit
    triggers) and may only SELECT and INSERT the audit trail. Without --password-env or
    --password-stdin the password is asked for at a hidden prompt."""
    import os

    from monitor.audit import app_role

    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise fail(f"the environment variable {password_env} is empty or not set")
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"password for {role}", hide_input=True, confirmation_prompt=True)
    with opened(settings()) as database:
        require_schema_at_head(database)
        with database.engine.begin() as connection:
            grant = app_role.grant_app_role(connection=connection, role=role, password=password)
    typer.echo(
        f"{'created' if grant.created else 'updated'} role {grant.role}: read/write on {grant.tables} tables, "
        f"append-only on {', '.join(app_role.APPEND_ONLY)}, no DDL; connect the servers as {grant.role}"
    )
    if grant.public_may_create:
        typer.echo(
            "warning: every role may create tables in schema public (PostgreSQL < 15); "
            "run REVOKE CREATE ON SCHEMA public FROM PUBLIC as the schema's owner",
            err=True,
        )


@db_app.command("current")
@reports_errors
def db_current() -> None:
    """Show the schema revision and whether it is the newest."""
    with opened(settings()) as database:
        current, heads = schema_heads(database)
    state = "at head" if current in heads else f"behind head {', '.join(sorted(heads))}: run `radmon db upgrade`"
    typer.echo(f"{current or 'empty'} ({state})")


# ---------------------------------------------------------------------------- users


PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from standard input (its first line) instead of a hidden prompt; for scripts.",
    ),
]


def _read_password(*, username: str, from_stdin: bool, required: bool) -> str | None:
    """The password from stdin or a hidden prompt; never from the command line (ps, shell history)."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise fail("--password-stdin read an empty password from standard input")
        return line
    if not sys.stdin.isatty():
        if required:
            raise fail(
                f"'{username}' needs a password: run in a terminal to be prompted, or pass --password-stdin "
                "and write it to standard input"
            )
        return None
    typed: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return typed


@users_app.command("create")
@reports_errors
def users_create(
    username: Annotated[str, typer.Option(help="Login name.")],
    role: Annotated[str, typer.Option(help="ingest, viewer, qa, approver or admin.")],
    password_stdin: PasswordStdin = False,
    full_name: Annotated[str, typer.Option(help="Printed name on signatures.")] = "",
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
) -> None:
    """Create a user. The password (at least 12 characters, not the username, not a common
    password) is asked at a hidden prompt or read with --password-stdin; ingest service
    accounts have none unless --password-stdin gives one."""
    from monitor.auth import service as auth_service
    from monitor.auth.actors import ROLES, SYSTEM

    prompt = role in ROLES and role != "ingest"
    password = (
        _read_password(username=username, from_stdin=password_stdin, required=prompt)
        if prompt or password_stdin
        else None
    )
    with transaction() as session:
        user = auth_service.create_user(
            session=session,
            actor=SYSTEM,
            username=username,
            role=role,
            password=password,
            full_name=full_name,
            email=email,
        )
        summary = f"created {user.role} user '{user.username}'"
    typer.echo(summary)


@users_app.command("set-password")
@reports_errors
def users_set_password(
    username: Annotated[str, typer.Option(help="Login name.")], password_stdin: PasswordStdin = False
) -> None:
    """Set a user's password (hidden prompt or --password-stdin); their open dashboard sessions end."""
    from monitor.auth import service as auth_service
    from monitor.auth.actors import SYSTEM

    password = _read_password(username=username, from_stdin=password_stdin, required=True)
    assert password is not None
    with transaction() as session:
        auth_service.change_password(session=session, actor=SYSTEM, username=username, password=password)
    typer.echo(f"password changed for '{username}'; their open sessions were ended")


@users_app.command("unlock")
@reports_errors
def users_unlock(username: Annotated[str, typer.Option(help="Login name.")]) -> None:
    """Lift a sign-in lockout and clear the user's failed sign-ins (audited)."""
    from monitor.auth import service as auth_service
    from monitor.auth.actors import SYSTEM

    with transaction() as session:
        auth_service.unlock_login(session=session, actor=SYSTEM, username=username)
    typer.echo(f"sign-in unlocked for '{username}'")


@users_app.command("list")
@reports_errors
def users_list() -> None:
    """List users."""
    from monitor.auth import service as auth_service
    from monitor.auth.actors import SYSTEM

    table = Table("username", "role", "full name", "email", "active", "password", "sign-in", "created")
    with transaction() as session:
        states = auth_service.sign_in_states(session=session, actor=SYSTEM)
        for user in auth_service.list_users(session=session, actor=SYSTEM):
            table.add_row(
                user.username,
                user.role,
                user.full_name,
                user.email or "",
                "yes" if user.is_active else "disabled",
                "set" if user.password_hash else "none (API key only)",
                states.get(user.username, "ok"),
                _when(user.created_at),
            )
    console().print(table)


@users_app.command("disable")
@reports_errors
def users_disable(username: Annotated[str, typer.Option(help="Login name.")]) -> None:
    """Disable a user: their password and API keys stop working at once."""
    from monitor.auth import service as auth_service
    from monitor.auth.actors import SYSTEM

    with transaction() as session:
        auth_service.disable_user(session=session, actor=SYSTEM, username=username)
    typer.echo(f"disabled user '{username}'")


# ---------------------------------------------------------------------------- keys


@keys_app.command("create")
@reports_errors
def keys_create(
    user: Annotated[str, typer.Option(help="Owner's username.")],
    name: Annotated[str, typer.Option(help="A label, e.g. the service that will use it.")] = "",
) -> None:
    """Create an API key; the key is printed alone on the last line (it is shown only once)."""
    from monitor.auth import service as auth_service
    from monitor.auth.actors import SYSTEM

    with transaction() as session:
        key, plain = auth_service.create_api_key(session=session, actor=SYSTEM, username=user, name=name)
        prefix = key.prefix
    typer.echo(f"created API key {prefix} for '{user}'; store it now, it is not shown again:")
    typer.echo(plain)


@keys_app.command("list")
@reports_errors
def keys_list(user: Annotated[str | None, typer.Option(help="Only this user's keys.")] = None) -> None:
    """List API keys (prefixes only)."""
    from monitor.auth import service as auth_service
    from monitor.auth.actors import SYSTEM

    table = Table("prefix", "user", "name", "created", "revoked")
    with transaction() as session:
        for key, owner in auth_service.list_api_keys(session=session, actor=SYSTEM, username=user):
            table.add_row(key.prefix, owner, key.name, _when(key.created_at), _when(key.revoked_at))
    console().print(table)


@keys_app.command("revoke")
@reports_errors
def keys_revoke(prefix: Annotated[str, typer.Option(help="The key's prefix, as `radmon keys list` shows it.")]) -> None:
    """Revoke an API key; it stops authenticating at once."""
    from monitor.auth import service as auth_service
    from monitor.auth.actors import SYSTEM

    with transaction() as session:
        auth_service.revoke_api_key(session=session, actor=SYSTEM, prefix=prefix)
    typer.echo(f"revoked API key {prefix}")


# ---------------------------------------------------------------------------- audit


@audit_app.command("verify")
@reports_errors
def audit_verify() -> None:
    """Recompute the keyed chain and compare it with the anchors; exits 1 naming the first broken link."""
    from monitor.audit import service as audit_service
    from monitor.auth.actors import SYSTEM

    with transaction() as session:
        result = audit_service.verify(session=session, actor=SYSTEM)
    if not result.ok:
        raise fail(f"audit chain broken at event {result.first_broken_seq}: {result.problem}")
    typer.echo(f"audit chain ok: {result.events} events, head {result.head_hash}")
    keyed = f"keyed from event {result.keyed_from_seq}" if result.keyed_from_seq else "no keyed event yet"
    if result.anchors:
        typer.echo(
            f"{keyed}; matches {result.anchors} anchors through event {result.anchored_seq} ({result.anchor_file})"
        )
    else:
        typer.echo(f"{keyed}; no anchors yet in {result.anchor_file} (run `radmon audit anchor`)")


@audit_app.command("anchor")
@reports_errors
def audit_anchor() -> None:
    """Verify the chain, then append its head to the anchor file and send it to the alert recipients/webhook."""
    from monitor.alerts import audit_anchor as audit_jobs

    with opened(settings()) as database:
        require_schema_at_head(database)
        result = audit_jobs.anchor_head(database=database)
    if not result.ok:
        raise fail(f"audit chain broken at event {result.first_broken_seq}: {result.problem}; nothing anchored")
    typer.echo(f"anchored event {result.seq} (hash {result.hash}) in {result.anchor_file}; {result.sent_to}")


@audit_app.command("export")
@reports_errors
def audit_export(
    out: Annotated[Path, typer.Option(help="CSV file to write (replaced if it exists).")],
    entity: Annotated[str | None, typer.Option(help="Only events on this entity type.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. user.create.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only events at or after this time (UTC).")] = None,
) -> None:
    """Export the audit trail (oldest first) as CSV, with each event's hashes."""
    from monitor.audit import service as audit_service
    from monitor.auth.actors import SYSTEM

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    rows = -1  # the header is not an event
    partial = out.with_name(out.name + ".partial")
    try:
        with transaction() as session, partial.open("w", newline="", encoding="utf-8") as handle:
            for chunk in audit_service.export_csv(
                session=session, actor=SYSTEM, entity=entity, action=action, since=since
            ):
                handle.write(chunk)
                rows += 1
        partial.replace(out)  # a reader never sees half a file
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    typer.echo(f"wrote {rows} audit events to {out}")


# ---------------------------------------------------------------------------- alerts


@alerts_app.command("test-email")
@reports_errors
def alerts_test_email(to: Annotated[str, typer.Option(help="Address to send the test email to.")]) -> None:
    """Send one test email now through the configured channel (SMTP, or the file outbox without RADMON_SMTP_HOST)."""
    from monitor.alerts import jobs as alerts_jobs

    result = alerts_jobs.send_test_email(to=to, settings=settings())
    if not result.ok:
        raise fail(result.detail)
    typer.echo(result.detail)


# ---------------------------------------------------------------------------- checks


def _utc_instant(value: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail(
            f"{option} must be an ISO date or date-time (e.g. 2026-11-02 or 2026-11-02T00:00Z); got '{value}'"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@checks_app.command("run")
@reports_errors
def checks_run(
    model: Annotated[str, typer.Option(help="Model name.")],
    kind: Annotated[list[str] | None, typer.Option(help="Check kind (repeatable); default: every kind.")] = None,
    window_end: Annotated[
        str | None, typer.Option(help="End of the window (ISO, UTC); default today 00:00 UTC.")
    ] = None,
) -> None:
    """Run checks for one window now; a re-run supersedes the window's previous runs (both kept)."""
    from monitor.auth.actors import SYSTEM
    from monitor.checks import flows, reads

    end = _utc_instant(window_end, "--window-end") if window_end else None
    with transaction() as session:
        runs = flows.run_checks(session=session, actor=SYSTEM, model_name=model, kinds=kind or None, window_end=end)
        table = Table("run", "version", "kind", "window", "status", "breaches", title=f"Checks for {model}")
        for run in runs:
            out = reads.run_out(session=session, run=run)
            table.add_row(
                str(out.id),
                out.version,
                out.kind,
                f"{_when(out.window_start)} .. {_when(out.window_end)}",
                out.status,
                str(sum(1 for point in out.metrics or [] if point.status == "breach")),
            )
    console().print(table)


@checks_app.command("backfill")
@reports_errors
def checks_backfill(
    model: Annotated[str, typer.Option(help="Model name.")],
    from_: Annotated[str, typer.Option("--from", help="First window end (ISO date, UTC).")],
    to: Annotated[str, typer.Option(help="Last window end (ISO date, UTC), inclusive.")],
) -> None:
    """Compute the daily windows between two dates as the scheduler would have; windows already
    done are skipped, so an interrupted backfill can simply be run again."""
    from rich.progress import Progress

    from monitor.checks import flows
    from monitor.checks import jobs as checks_jobs

    first, last = _utc_instant(from_, "--from"), _utc_instant(to, "--to")
    with opened(settings()) as database:
        require_schema_at_head(database)
        with database.transaction() as session:
            ends = flows.backfill_windows(session=session, model_name=model, first_end=first, last_end=last)
        with Progress(console=console(), transient=True) as progress:
            task = progress.add_task(f"Backfilling {model}", total=len(ends))
            made = checks_jobs.backfill(
                model, ends, database=database, on_window=lambda _end, _runs: progress.advance(task)
            )
    console().print(
        f"{made} check runs over {len(ends)} daily windows of {model} ({_when(ends[0])} .. {_when(ends[-1])})."
    )


# ---------------------------------------------------------------------------- reports


def _report_period(period: str | None, from_: str | None, to: str | None) -> dict[str, str]:
    if period and (from_ or to):
        raise fail("give --period YYYY-MM or --from and --to, not both")
    if period:
        return {"period": period}
    if from_ and to:
        return {"period_start": from_, "period_end": to}
    raise fail("give --period YYYY-MM (a month) or --from and --to (first and last day, inclusive)")


def _reports_table(reports: list[Any], title: str) -> Table:
    table = Table("id", "model", "period", "rev", "status", "pages", "sha256", "signatures", title=title)
    for r in reports:
        table.add_row(
            str(r.id),
            r.model,
            f"{r.period_start.isoformat()} .. {r.period_end.isoformat()}",
            str(r.revision),
            r.status,
            str(r.pages),
            r.sha256,
            "; ".join(f"{s.printed_name} ({s.meaning}, {_when(s.signed_at)})" for s in r.signatures) or "-",
        )
    return table


@reports_app.command("generate")
@reports_errors
def reports_generate(
    model: Annotated[str, typer.Option(help="Model name.")],
    period: Annotated[str | None, typer.Option(help="A month, YYYY-MM (e.g. 2026-11).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD, UTC), with --to.")] = None,
    to: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD, UTC), inclusive.")] = None,
) -> None:
    """Generate the draft report of a period from the stored data (a draft of the period is replaced;
    a signed report is refused: correct it by a new revision on the dashboard or the API)."""
    from pydantic import ValidationError

    from monitor.auth.actors import SYSTEM
    from monitor.reports import service as reports_service
    from monitor.reports.schemas import ReportCreate

    try:
        data = ReportCreate.model_validate({"model": model, **_report_period(period, from_, to)})
    except ValidationError as exc:
        raise fail("; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())) from None
    config = settings()
    started = time.perf_counter()
    with transaction() as session:
        result = reports_service.generate(
            session=session, actor=SYSTEM, data=data, approval_required=config.report_approval_required
        )
    if result.refusal is not None:  # committed: the refused attempt is in the audit trail
        raise fail(result.refusal.message)
    assert result.report is not None
    console().print(_reports_table([result.report], title=f"Draft report of {model}"))
    console().print(
        f"{result.report.pages} pages in {time.perf_counter() - started:.1f} s; awaits the QA lead's signature."
    )


@reports_app.command("list")
@reports_errors
def reports_list(model: Annotated[str | None, typer.Option(help="Only this model's reports.")] = None) -> None:
    """Reports, newest period first, with their status, PDF hash and signatures."""
    from monitor.auth.actors import SYSTEM
    from monitor.reports import service as reports_service

    config = settings()
    with transaction() as session:
        reports = reports_service.list_reports(
            session=session, actor=SYSTEM, model_name=model, approval_required=config.report_approval_required
        )
    console().print(_reports_table(reports, title="Surveillance reports"))


@reports_app.command("download")
@reports_errors
def reports_download(
    report_id: Annotated[
        int, typer.Option("--id", min=1, max=2**31 - 1, help="Report id, as `radmon reports list` shows it.")
    ],
    out: Annotated[Path | None, typer.Option(help="File or folder to write; default: the report's name here.")] = None,
) -> None:
    """Write a report's PDF exactly as stored and print its SHA-256."""
    from monitor.auth.actors import SYSTEM
    from monitor.reports import service as reports_service

    with transaction() as session:
        found = reports_service.report_pdf(session=session, actor=SYSTEM, report_id=report_id)
    target = out or Path(found.name)
    if target.is_dir():
        target = target / found.name
    try:
        target.write_bytes(found.content)
    except OSError as exc:
        raise fail(f"cannot write {target}: {exc.strerror or exc}") from None
    typer.echo(f"{target} ({len(found.content)} bytes, sha256 {found.sha256})")


# ---------------------------------------------------------------------------- simulate


@app.command()
@reports_errors
def simulate(
    scenario: Annotated[
        str,
        typer.Option(
            help="Scenario name or spec, e.g. scanner_change or 'scanner_change:site=north,onset=45+prevalence_shift'; 'demo' is the demo's mix."
        ),
    ] = "null",
    days: Annotated[int, typer.Option(min=1, max=3650, help="Days of traffic.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same records).")] = 7,
    per_day: Annotated[int, typer.Option(min=1, help="Studies per day.")] = 300,
    out: Annotated[Path, typer.Option(help="Folder for the JSON-lines files.")] = Path("radmon-simulation"),
    post: Annotated[
        str | None, typer.Option(help="Also post the traffic to this radmon (base URL) with --api-key.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(envvar="RADMON_API_KEY", help="Ingest API key for --post.")] = None,
) -> None:
    """Simulate head-CT traffic with injected failure modes: write reference, inferences, outcomes
    (as confirmed by the end of the run), policy and version files, and optionally post them."""
    from monitor import simulate as simulation_module

    try:
        simulation = simulation_module.create_simulation(scenario=scenario, days=days, per_day=per_day, seed=seed)
    except ValueError as exc:
        raise fail(str(exc)) from None
    written = simulation_module.export(simulation, out)
    summary = simulation.summary()
    console().print(
        f"{summary['inferences']} inferences ({summary['positives']} positive), {summary['outcomes']} outcomes, "
        f"scenarios: {' + '.join(summary['scenarios'])}; files in {out}: {', '.join(p.name for p in written.values())}"
    )
    if post is None:
        return
    if not api_key:
        raise fail("--post needs --api-key (or RADMON_API_KEY): an ingest key of that radmon")
    from monitor.client import RadmonClient, RadmonError

    try:
        with RadmonClient(post, api_key) as client:
            inferences = client.log_inferences(simulation.inferences())
            outcomes = client.log_outcomes(simulation.outcomes(as_of=simulation.end))
    except RadmonError as exc:
        raise fail(f"the server refused the traffic: {exc}") from None
    console().print(
        f"posted: {inferences['delivered']} inferences ({len(inferences['rejected'])} rejected), "
        f"{outcomes['delivered']} outcomes ({len(outcomes['rejected'])} rejected)"
    )


# ---------------------------------------------------------------------------- adverse events


@adverse_app.command("deadlines")
@reports_errors
def adverse_deadlines(
    open_only: Annotated[bool, typer.Option("--open", help="Only events with a report still to file.")] = False,
) -> None:
    """List adverse events with each jurisdiction's deadline as a countdown (decision 0601)."""
    from monitor.adverse import service as adverse_service
    from monitor.auth.actors import SYSTEM

    config = settings()
    table = Table("event", "incident", "model", "jurisdiction", "regulation", "status", "deadline")
    with transaction() as session:
        events = adverse_service.list_events(session=session, actor=SYSTEM, settings=config, open_only=open_only)
    for event in events:
        for deadline in event.deadlines:
            table.add_row(
                f"#{event.id}",
                f"#{event.alert_id}",
                event.model,
                deadline.name,
                deadline.regulation,
                deadline.status,
                deadline.countdown,
            )
    console().print(table if events else "no adverse events" + (" with a report still to file" if open_only else ""))


@adverse_app.command("remind")
@reports_errors
def adverse_remind() -> None:
    """Queue the deadline reminders that fell due now (the scheduler does this every 15 minutes)."""
    from monitor.adverse import jobs as adverse_jobs

    config = settings()
    with opened(config) as database:
        require_schema_at_head(database)
        queued = adverse_jobs.queue_reminders(database=database, settings=config)
    typer.echo(f"{queued} reminder{'' if queued == 1 else 's'} queued in the outbox")


def main() -> None:
    app(prog_name="radmon")


if __name__ == "__main__":
    main()
