"""The demo's critical incident as a reportable adverse event: classify it, queue the reminders, render the
dossier twice (time, pages, SHA-256), write it next to the database (decision 0601).

    radmon demo --days 90 --seed 7 --port 8101 --db /tmp/x/radmon-demo.db --no-serve
    PYTHONPATH=. python bench/adverse_dossier.py /tmp/x/radmon-demo.db

Works on a copy of the database (the demo's file is left as it was); the classifier is a qa user created
here, the facility in Europe/Berlin."""

import os
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select

from monitor import migrate
from monitor.adverse import dossier, reminders, service
from monitor.adverse.schemas import ClassifyCreate, ReportedCreate
from monitor.alerts.models import Alert
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.config import load_settings
from monitor.db import Database, utcnow

# The demo's database: its audit chain is keyed with the demo's key.
os.environ.setdefault("RADMON_DEMO", "true")
source = Path(sys.argv[1])
work = Path(tempfile.mkdtemp()) / source.name
shutil.copy(source, work)
database = Database(f"sqlite:///{work}")
migrate.upgrade(database.engine)
settings = load_settings(demo=True, database_url=database.url, facility_timezone="Europe/Berlin")
password = "bench password for the qa lead"
now = utcnow()
with database.transaction() as session:
    user = auth_service.create_user(
        session=session, actor=SYSTEM, username="qa-lead", role="qa", password=password, full_name="Dr. Q. A. Lead"
    )
    qa = auth_service.actor_for(user)
    incident = (
        session.execute(
            select(Alert)
            .where(Alert.severity == "critical", Alert.incident_id.is_(None), Alert.status != "resolved")
            .order_by(Alert.id)
        )
        .scalars()
        .first()
    )
    assert incident is not None, "the demo has no open critical incident"
with database.transaction() as session:
    event = service.classify(
        session=session,
        actor=qa,
        alert_id=incident.id,
        data=ClassifyCreate(
            jurisdictions=["fda-user-facility", "fda-manufacturer", "eu-mdr-serious-incident"],
            aware_at=now - timedelta(days=8),
            remedial_action=True,
            reason="missed intracranial haemorrhages at site north after the scanner change",
            password=SecretStr(password),
        ),
        settings=settings,
        now=now,
    ).event
    assert event is not None
with database.transaction() as session:
    queued = reminders.queue_due_reminders(session=session, now=now, settings=settings)
    service.mark_reported(
        session=session,
        actor=qa,
        event_id=event.id,
        jurisdiction="fda-manufacturer",
        data=ReportedCreate(reference="3012345678-2026-00017", password=SecretStr(password)),
        settings=settings,
        now=now + timedelta(minutes=5),
    )
print(f"incident #{incident.id}: {service.incident_headline(incident)}; adverse event #{event.id}")
for deadline in event.deadlines:
    print(f"  {deadline.jurisdiction}: {deadline.regulation}, {deadline.countdown}")
print(f"reminders queued now: {queued}")
timings, hashes = [], []
for _ in range(2):
    with database.transaction() as session:
        started = time.perf_counter()
        rendered = dossier.render(session=session, actor=SYSTEM, event_id=event.id, settings=settings)
        timings.append(time.perf_counter() - started)
        hashes.append(rendered.sha256)
out = source.with_name(f"adverse-event-{event.id}-dossier.pdf")
out.write_bytes(rendered.pdf)
print(f"dossier: {rendered.pages} pages, {len(rendered.pdf)} bytes, {', '.join(f'{t:.2f} s' for t in timings)}")
print(f"sha256 twice: {hashes[0]} {'==' if hashes[0] == hashes[1] else '!='} {hashes[1]}")
print(f"written to {out}")
os.remove(work)
