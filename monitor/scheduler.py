"""The APScheduler instance: each domain's scheduled jobs, with the job store in the database."""

from __future__ import annotations

import logging
from datetime import UTC

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Column, Float, LargeBinary, Table, Unicode

from monitor.config import get_settings
from monitor.db import Base, Database, get_database

log = logging.getLogger("radmon.scheduler")

JOBS_TABLE = "apscheduler_jobs"
# The job store's table, declared here too so the migrations create it (and schema checks see it).
apscheduler_jobs = Table(
    JOBS_TABLE,
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)

SYNC_SECONDS = 60
CHECK_JOB_PREFIX = "checks:model:"  # distinct from the housekeeping ids, which sync must not touch


def sync_check_jobs() -> None:
    """Add, reschedule or remove each model's check job to follow its policy's cron."""
    from monitor.checks import jobs as checks_jobs

    scheduler = _current
    if scheduler is None:
        return
    wanted = checks_jobs.scheduled_models()
    existing = {job.id: job for job in scheduler.get_jobs() if job.id.startswith(CHECK_JOB_PREFIX)}
    for model_name, cron in wanted.items():
        job_id = CHECK_JOB_PREFIX + model_name
        trigger = CronTrigger.from_crontab(cron, timezone=UTC)
        job = existing.pop(job_id, None)
        if job is None:
            scheduler.add_job(
                "monitor.checks.jobs:run_due_checks", trigger, id=job_id, args=[model_name], replace_existing=True
            )
            log.info("check job scheduled", extra={"model": model_name, "cron": cron})
        elif str(job.trigger) != str(trigger):
            scheduler.reschedule_job(job_id, trigger=trigger)
            log.info("check job rescheduled", extra={"model": model_name, "cron": cron})
    for job_id in existing:
        scheduler.remove_job(job_id)


# Housekeeping every domain needs: (job id, "module:function", seconds between runs).
HOUSEKEEPING = (
    ("alerts:deliver", "monitor.alerts.jobs:deliver_due", 30),
    ("registry:expire-change-requests", "monitor.registry.jobs:expire_change_requests", 300),
    ("registry:deployment-webhooks", "monitor.registry.jobs:deliver_deployment_webhooks", 60),
    # Outcomes arrive weeks late: recent windows are re-evaluated as their labels come in.
    ("checks:recompute-labelled", "monitor.checks.jobs:recompute_labelled", 3600),
    # Adverse-event deadline reminders (decision 0601); the alerts:deliver job sends what they queue.
    ("adverse:reminders", "monitor.adverse.jobs:queue_reminders", 900),
)

# The audit chain's head verified and anchored outside the database once a day (decision 0205).
AUDIT_ANCHOR_JOB = (
    "audit:anchor",
    "monitor.alerts.audit_anchor:anchor_head",
    CronTrigger(hour=2, minute=15, timezone=UTC),
)

# Last month's surveillance report of every model, drafted on the 1st at 06:00 facility time
# (RADMON_FACILITY_TIMEZONE) for the QA lead to sign; the job does nothing when the drafts exist (decision 0604).
REPORTS_MONTHLY_JOB = ("reports:monthly-drafts", "monitor.reports.jobs:draft_last_month")


def reports_monthly_trigger(timezone: str) -> CronTrigger:
    return CronTrigger(day=1, hour=6, minute=0, timezone=timezone)


_current: BaseScheduler | None = None


def build_scheduler(*, database: Database | None = None, blocking: bool = False) -> BaseScheduler:
    """A scheduler with every job registered; start() it (blocking for `--role scheduler`)."""
    global _current
    database = database or get_database()
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(
        jobstores={"default": SQLAlchemyJobStore(engine=database.engine, tablename=JOBS_TABLE)},
        timezone=UTC,
        # A job missed while no scheduler ran (restart, outage) runs once when one is back.
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600},
    )
    for job_id, func, seconds in HOUSEKEEPING:
        scheduler.add_job(func, "interval", seconds=seconds, id=job_id, replace_existing=True)
    scheduler.add_job(
        "monitor.scheduler:sync_check_jobs", "interval", seconds=SYNC_SECONDS, id="checks:sync", replace_existing=True
    )
    # A fixed clock, not an interval: a restart re-adds the job and must not push the anchor back a day.
    scheduler.add_job(AUDIT_ANCHOR_JOB[1], AUDIT_ANCHOR_JOB[2], id=AUDIT_ANCHOR_JOB[0], replace_existing=True)
    scheduler.add_job(
        REPORTS_MONTHLY_JOB[1],
        reports_monthly_trigger(get_settings().facility_timezone),
        id=REPORTS_MONTHLY_JOB[0],
        replace_existing=True,
    )
    _current = scheduler
    return scheduler


def start(scheduler: BaseScheduler) -> None:
    """Start, then place the check jobs at once rather than after the first sync interval."""
    # BackgroundScheduler subclasses BlockingScheduler: test for it first.
    if isinstance(scheduler, BackgroundScheduler):
        scheduler.start()
        sync_check_jobs()
        return
    scheduler.add_job("monitor.scheduler:sync_check_jobs", id="checks:sync-now", replace_existing=True)
    scheduler.start()
