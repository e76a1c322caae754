"""The dashboard's only door to radmon: every read and write goes through monitor services.

Each function opens its own transaction and acts as the signed-in Actor, so the services
authorize and audit exactly as they do for the API. Results are plain pydantic or dataclass
values, never ORM objects, because the session is closed when the page renders them.

One module per page family (decision 0203): registry (models, versions, change requests, the
policy), alerting, audit (with the background chain verification), analysis (monitoring status,
the analysis scope, drift, performance, subgroups, the report); base holds the unit of work. The
pages use this package's names (`data.X`), which are re-exported here; a test that points
`transaction` at its session patches it in every module that calls it (see
tests/dashboard/conftest.py).
"""

from __future__ import annotations

from dashboard.data.alerting import (
    ALERT_LIST_LIMIT,
    SEVERITY_ORDER,
    AlertDetail,
    AlertFilters,
    act_on_alert,
    alert_detail,
    alerts,
)
from dashboard.data.analysis import (
    PERFORMANCE_METRICS,
    VOLUME_DAYS,
    AnalysisScope,
    Distribution,
    DriftView,
    MonitoringStatus,
    PerformanceView,
    SubgroupView,
    VersionSwitch,
    analysis_scope,
    check_report,
    drift_distribution,
    drift_view,
    monitoring_status,
    performance_view,
    subgroup_view,
)
from dashboard.data.audit import (
    AUDIT_PAGE_SIZE,
    AuditFilters,
    AuditPage,
    audit_chain,
    audit_csv,
    audit_events,
    full_verification_result,
    start_full_verification,
    verify_audit_full,
)
from dashboard.data.base import transaction
from dashboard.data.registry import (
    ModelDetail,
    ModelSummary,
    activate_first_version,
    change_request,
    change_requests,
    decide_change_request,
    model_choices,
    model_detail,
    overview,
    parse_policy,
    policy,
    policy_json,
    request_change,
    save_policy,
)

__all__ = [
    "ALERT_LIST_LIMIT",
    "AUDIT_PAGE_SIZE",
    "PERFORMANCE_METRICS",
    "SEVERITY_ORDER",
    "VOLUME_DAYS",
    "AlertDetail",
    "AlertFilters",
    "AnalysisScope",
    "AuditFilters",
    "AuditPage",
    "Distribution",
    "DriftView",
    "ModelDetail",
    "ModelSummary",
    "MonitoringStatus",
    "PerformanceView",
    "SubgroupView",
    "VersionSwitch",
    "act_on_alert",
    "activate_first_version",
    "alert_detail",
    "alerts",
    "analysis_scope",
    "audit_chain",
    "audit_csv",
    "audit_events",
    "change_request",
    "change_requests",
    "check_report",
    "decide_change_request",
    "drift_distribution",
    "drift_view",
    "full_verification_result",
    "model_choices",
    "model_detail",
    "monitoring_status",
    "overview",
    "parse_policy",
    "performance_view",
    "policy",
    "policy_json",
    "request_change",
    "save_policy",
    "start_full_verification",
    "subgroup_view",
    "transaction",
    "verify_audit_full",
]
