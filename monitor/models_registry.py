"""Imports every domain's tables so Base.metadata is complete (Alembic, tests)."""

import monitor.scheduler  # noqa: F401  (the job store's table)
from monitor.adverse import models as adverse_models  # noqa: F401
from monitor.alerts import models as alerts_models  # noqa: F401
from monitor.audit import models as audit_models  # noqa: F401
from monitor.auth import models as auth_models  # noqa: F401
from monitor.checks import models as checks_models  # noqa: F401
from monitor.ingest import models as ingest_models  # noqa: F401
from monitor.reference import models as reference_models  # noqa: F401
from monitor.registry import models as registry_models  # noqa: F401
from monitor.reports import models as reports_models  # noqa: F401
