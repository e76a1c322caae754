"""CPU time of a full audit chain verification (HMAC-SHA256 and the anchor check, decision 0205).

    PYTHONPATH=. python bench/audit_chain.py 20000 [DATABASE_URL]

Run it with PYTHONPATH at a checkout from before 0205 to compare with the plain SHA-256 chain
(the anchor job is then reported as None). CPU time, not wall time: on a shared machine the
wall time mostly measures the neighbours."""

import os
import sys
import tempfile
import time

os.environ.setdefault("RADMON_SECRET_KEY", "bench-secret-key-0123456789")
os.environ.setdefault("RADMON_AUDIT_KEY", "bench-audit-key-0123456789")
os.environ["RADMON_AUDIT_ANCHOR_FILE"] = tempfile.mkdtemp() + "/anchors.jsonl"
from monitor import migrate
from monitor.audit import service as audit
from monitor.auth.actors import SYSTEM
from monitor.db import Database

N = int(sys.argv[1])
url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{tempfile.mkdtemp()}/bench.db"
db = Database(url)
migrate.upgrade(db.engine)
with db.transaction() as s:
    for start in range(0, N, 1000):
        audit.record_many(
            session=s,
            events=[
                audit.PendingEvent(
                    actor="svc",
                    action="ingest.batch",
                    entity="batch",
                    entity_id=str(i),
                    after={"accepted": 100, "rejected": 0, "model": "ich-ct"},
                )
                for i in range(start, start + 1000)
            ],
        )
try:
    from monitor.alerts import audit_anchor as jobs

    t = time.perf_counter()
    r = jobs.anchor_head(database=db)
    anchor_s = time.perf_counter() - t
except ImportError:
    anchor_s = None
best = []
for _ in range(3):
    with db.transaction() as s:
        t = time.process_time()
        v = audit.verify(session=s, actor=SYSTEM)
        best.append(time.process_time() - t)
print(
    f"{N} events: verify {min(best):.3f} s CPU (best of 3), ok={v.ok}, anchor job {anchor_s if anchor_s is None else round(anchor_s, 3)} s"
)
