"""`radmon demo`: a small synthetic hospital, seeded through the real API and served.

The traffic generator here is deliberately small and deterministic; the full simulator with
injected failure modes (monitor.simulate) replaces it in a later release.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from monitor import serve
from monitor.auth import service as auth_service
from monitor.auth.actors import SYSTEM
from monitor.config import Settings, get_settings, load_settings
from monitor.db import Database
from monitor.errors import MonitorError
from monitor.registry import service as registry_service
from monitor.registry.schemas import ModelCreate, VersionCreate

MODEL = "ich-ct"
VERSIONS = ("2.0.0", "2.1.0")
ACTIVE_VERSION = "2.1.0"
TARGETS = {"sensitivity": 0.90, "specificity": 0.80, "auc": 0.85}
ROLES = ("ingest", "viewer", "qa", "approver", "admin")
FULL_NAMES = {
    "ingest": "ICH inference service",
    "viewer": "Dr. Vera Viewer",
    "qa": "Quinn Assurance (QA lead)",
    "approver": "Dr. Abel Approver",
    "admin": "Ada Admin",
}
# Each site has a main scanner vendor (and some of the others), as hospitals do.
SITES = {"north": "GE", "south": "SIEMENS", "east": "PHILIPS", "west": "CANON"}
MANUFACTURERS = ("GE", "SIEMENS", "PHILIPS", "CANON")
AGE_BANDS = ("18-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80-89", "90+")
AGE_WEIGHTS = (0.05, 0.07, 0.10, 0.14, 0.18, 0.21, 0.18, 0.07)
OUTCOME_SOURCES = ("consensus_read", "follow_up", "pathology")
PER_DAY = 240
PREVALENCE = 0.12


class DemoError(MonitorError):
    code = "demo"


@dataclass(frozen=True)
class Account:
    role: str
    username: str
    password: str | None
    api_key: str


# ---------------------------------------------------------------------------- traffic


def synthetic_traffic(*, days: int, seed: int, now: datetime, per_day: int = PER_DAY) -> tuple[list[dict], list[dict]]:
    """Inference records for the last `days` days and the outcomes confirmed by `now`.

    A hidden label drives the score (AUC about 0.95) and, a little, the image statistics;
    outcomes arrive hours to weeks after the study (mean 2.5 days), for about 70% of studies."""
    rng = np.random.default_rng(seed)
    start = (now - timedelta(days=days)).replace(microsecond=0)
    n = days * per_day
    occurred = [start + timedelta(seconds=int(s)) for s in np.sort(rng.uniform(0, days * 86400 - 60, n))]
    label = rng.random(n) < PREVALENCE
    site = rng.choice(list(SITES), n, p=(0.35, 0.25, 0.25, 0.15))
    # At the 0.5 threshold: sensitivity about 0.92, specificity about 0.85 (targets 0.90 / 0.80).
    logit = -1.04 + 2.44 * label + rng.normal(0, 1.0, n)
    score = 1 / (1 + np.exp(-logit))
    inferences = [
        {
            "model": MODEL,
            "version": ACTIVE_VERSION,
            "inference_id": f"demo-{seed}-{i:07d}",
            "occurred_at": occurred[i].isoformat(),
            "study_key": f"acc-{hashlib.sha256(f'{seed}:{i}'.encode()).hexdigest()[:16]}",
            "score": round(float(score[i]), 4),
            "prediction": int(score[i] >= 0.5),
            "latency_ms": int(rng.lognormal(5.9, 0.3)),
            "features": _features(rng, site=str(site[i]), positive=bool(label[i])),
        }
        for i in range(n)
    ]
    outcomes = []
    for i in range(n):
        confirmed = occurred[i] + timedelta(hours=float(2 + rng.exponential(60)))
        if confirmed < now and rng.random() < 0.7:
            outcomes.append(
                {
                    "model": MODEL,
                    "inference_id": inferences[i]["inference_id"],
                    "label": int(label[i]),
                    "source": str(rng.choice(OUTCOME_SOURCES, p=(0.6, 0.3, 0.1))),
                    "confirmed_at": confirmed.isoformat(),
                }
            )
    return inferences, outcomes


def _features(rng: np.random.Generator, *, site: str, positive: bool) -> dict[str, Any]:
    manufacturer = SITES[site] if rng.random() < 0.8 else str(rng.choice(MANUFACTURERS))
    return {
        "site": site,
        "manufacturer": manufacturer,
        "kvp": int(rng.choice((100, 120, 140), p=(0.15, 0.75, 0.10))),
        "slice_thickness": float(rng.choice((0.625, 1.25, 2.5, 5.0), p=(0.2, 0.3, 0.35, 0.15))),
        "patient_sex": str(rng.choice(("F", "M"))),
        "age_band": str(rng.choice(AGE_BANDS, p=AGE_WEIGHTS)),
        # Blood is denser than brain: positive studies read a little brighter on average.
        "mean_hu": round(float(rng.normal(33.0 + 4.0 * positive, 3.0)), 1),
        "noise_sd": round(float(rng.gamma(9.0, 0.7)), 2),
    }


# ---------------------------------------------------------------------------- set-up


def demo_settings(db_path: Path) -> Settings:
    """Demo settings (no secret needed), also exported so every get_settings() agrees."""
    url = f"sqlite:///{db_path.resolve()}"
    os.environ["RADMON_DEMO"] = "true"
    os.environ["RADMON_DATABASE_URL"] = url
    get_settings.cache_clear()
    return load_settings(demo=True, database_url=url)


def fresh_database(db_path: Path, settings: Settings) -> Database:
    """Delete the previous demo file (with its WAL) and migrate a new one."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return serve.open_database(settings)


def create_accounts(session: Session) -> list[Account]:
    """One user and API key per role; random passwords (the demo may listen beyond localhost)."""
    accounts = []
    for role in ROLES:
        password = None if role == "ingest" else secrets.token_urlsafe(9)
        username = "ingest-bot" if role == "ingest" else role
        auth_service.create_user(
            session=session,
            actor=SYSTEM,
            username=username,
            role=role,
            password=password,
            full_name=FULL_NAMES[role],
            email=f"{username}@hospital.example",
        )
        _, key = auth_service.create_api_key(session=session, actor=SYSTEM, username=username, name="demo")
        accounts.append(Account(role, username, password, key))
    return accounts


def register_model(session: Session) -> None:
    """The ICH head-CT model with two versions, the newer one active."""
    registry_service.create_model(
        session=session,
        actor=SYSTEM,
        data=ModelCreate(
            name=MODEL,
            display_name="Intracranial hemorrhage triage (head CT)",
            modality="CT",
            body_part="HEAD",
            intended_use="Prioritise non-contrast head CT with suspected intracranial hemorrhage for radiologist review.",
            alert_recipients=["ai-committee@hospital.example"],
        ),
    )
    for version in VERSIONS:
        artifact = f"ich-ct model weights {version}".encode()
        registry_service.create_version(
            session=session,
            actor=SYSTEM,
            model_name=MODEL,
            data=VersionCreate(
                version=version,
                artifact_uri=f"s3://models/{MODEL}/{version}.onnx",
                artifact_sha256=hashlib.sha256(artifact).hexdigest(),
                training_data="Multi-site retrospective head CT, 2019-2023",
                validated_populations=["adults 18+", "non-contrast head CT"],
                targets=TARGETS,
                decision_threshold=0.5,
            ),
        )
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


def run(
    *, db_path: Path, days: int, host: str, port: int, seed: int, serve_forever: bool, out: Console
) -> dict[str, int]:
    """Seed the demo, then serve it (or return the counts with serve_forever=False)."""
    settings = demo_settings(db_path)
    serve.configure_server_logging(settings, level="WARNING")  # quiet while seeding: the console tells
    database = fresh_database(db_path, settings)
    with database.transaction() as session:
        accounts = create_accounts(session)
        register_model(session)
    out.print(accounts_table(accounts))
    server = serve.BackgroundServer(serve.build_app(settings, serve.Role.ALL), host=host, port=port)
    bound = server.start()
    scheduler = None
    base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{bound}"
    try:
        inferences, outcomes = synthetic_traffic(days=days, seed=seed, now=datetime.now(UTC))
        out.print(f"Posting {len(inferences)} inferences and {len(outcomes)} outcomes through {base_url}/api/v1 ...")
        counts = ingest(base_url, next(a.api_key for a in accounts if a.role == "ingest"), inferences, outcomes)
        out.print(f"Stored {counts['inferences']} inferences and {counts['outcomes']} outcomes in {db_path}.")
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
