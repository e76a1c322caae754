"""The input_drift and output_drift kinds: findings from the window's and the reference's profiles.

Metric names (metric_points.metric) and what their status means:

- drift_score (per feature; output_drift: feature "score"): Evidently's column drift score and
  verdict (details.drifted). breach when it drifted, the difference is beyond sampling noise
  (two-sample KS for numeric, chi-square homogeneity for categorical, p <= 0.01:
  details.significance_p_value) and, for a distance, the distance net of its sampling bias still
  reaches the threshold (details.effect = score - details.noise_mean, the mean distance between
  two samples of these sizes from the reference itself: about 0.03 of Evidently's 0.1 at a week of
  300 studies/day; docs/decisions/0502). Evidently's fixed distance thresholds do not scale with
  the window's size, and a handful of extreme values can carry Wasserstein alone, so small or
  heavy-tailed windows would otherwise raise false findings; warn when it drifted within
  sampling noise; else ok. details.outside_reference_range counts values beyond the reference.
- missing_share (per feature): the window's missing-value share with a Wilson 95% interval
  (continuity-corrected, stats.wilson: the one decision 0420 chose);
  threshold = reference share + MISSING_TOLERANCE; breach when the interval lies above it
  (significant), warn when only the point estimate does.
- unseen_categories (categorical features): share of the window's rows in categories the
  reference never had; warn on any, breach from UNSEEN_SHARE of rows (and UNSEEN_MIN_ROWS rows).
- dataset_drift_share: share of evaluated features that drifted; breach from DATASET_DRIFT_SHARE
  (Evidently's DriftedColumnsCount default, 0.5).
- unified_drift (no feature) and unified_drift_contribution (per component): see drift.py.
- positive_rate (output_drift, feature "prediction"): the window's positive-prediction rate
  with a Wilson 95% interval against the reference rate (threshold); breach when the two rates
  differ beyond sampling noise (two-sample bootstrap, both are estimates) and the interval lies
  outside the reference rate widened by POSITIVE_RATE_TOLERANCE (relative); warn when they only
  differ beyond sampling noise (p <= RATE_WARN_ALPHA).

- drift_score (feature "score") and positive_rate (feature "prediction") per segment
  (output_drift; segment "site=north" for each value of each policy segment attribute): the
  segment's window against the same segment of the reference, from the daily profiles'
  per-segment sums (profiles.SegmentOutputs). Score: value = shift of the mean log-odds of the
  score in the reference segment's standard deviations (for a location shift on the log-odds
  scale this is the normed Wasserstein distance, so Evidently's 0.1, policy.drift_threshold,
  is the effect threshold), significance by a Mann-Whitney rank test on the scores binned at 50
  quantiles of the reference (log-odds are skewed: a t-test's lower tail fires 3x too often at
  a few hundred rows). Positive rate: effect = relative change (POSITIVE_RATE_TOLERANCE),
  pooled two-proportion z-test. breach when the effect reaches its threshold and
  p <= SEGMENT_ALPHA / m, m the run's segment tests (Bonferroni: 2 per distinct segment;
  segments with exactly the same rows, such as a site with one manufacturer, are one test,
  reported under each name with details.same_rows_as); warn when the effect reaches its
  threshold and p <= SEGMENT_WARN_ALPHA / m. A change at one site of four hardly moves the
  overall figures; these look at the site itself. Segments below min_window_count rows in the
  window or the reference are insufficient_data.

- score_sequential (feature "score"), positive_rate_sequential (feature "prediction"), overall and
  per segment (output_drift), and drift_sequential (per numeric input, whole population;
  input_drift): the sequential decision of docs/decisions/0503 (checks.sequential: the two-sided
  GLR over the version's last 56 days, since the series' last acknowledgement) on daily totals
  read from the stored daily profiles only: for the score and the inputs, each row's place in the
  reference (mid-rank of its bin in the reference's histogram) against the reference's mean place;
  for the rate, the day's positive predictions against the reference's rate. breach (the kind's
  severity: warning by default) when G crossed the threshold of the model's warning budget
  (policy.false_warnings_per_month split over every drift series, series with identical data
  counted once); value = G today, threshold = c, details.onset = the estimated change point,
  details.sequential = statistic, threshold, z, arl0_days, series.

A window (or a feature within it) with fewer rows than the policy's min_window_count yields
`insufficient_data`, never `ok`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any

import numpy as np
from scipy import stats

from monitor.checks import drift, sequential
from monitor.checks.drift import ColumnDrift
from monitor.checks.kinds import Finding, KindContext, KindResult, register
from monitor.checks.profiles import (
    CategoricalColumn,
    CategoricalHist,
    Column,
    Hist,
    NumericColumn,
    NumericHist,
    SegmentOutputs,
)
from monitor.checks.schemas import FeatureSpec
from monitor.checks.stats import wilson
from monitor.checks.windows import reference_places, stored_sequential_totals

MISSING_TOLERANCE = 0.05
UNSEEN_SHARE = 0.01
UNSEEN_MIN_ROWS = 5
DATASET_DRIFT_SHARE = 0.5
POSITIVE_RATE_TOLERANCE = 0.2
RATE_WARN_ALPHA = 0.01
TOP_UNSEEN = 20
# Per-segment output drift: family-wise error per run over the segment tests (Bonferroni).
# Daily runs of a 7-day window are ~13 independent looks per 90 days, all against the same
# reference sample: 0.001 per run kept 20 simulated seeds x 90 days free of false segment
# findings, 0.002 did not (docs/decisions/0501).
SEGMENT_ALPHA = 0.001
SEGMENT_WARN_ALPHA = 0.01


def _drift_finding(name: str, drifted: ColumnDrift, column: Column, window: Hist, noise: drift.Noise) -> Finding:
    test, p_value = drift.significance(column, window)
    # The distance net of what sampling alone adds to it (the mean of its bootstrap under no
    # change), when the noise was measured with the method's own statistic.
    effect = drifted.score - noise.mean if noise.statistic == drifted.method else None
    status = "ok"
    if drifted.drifted:
        beyond_noise = p_value <= drift.SIGNIFICANCE_ALPHA and (effect is None or effect >= drifted.threshold)
        status = "breach" if beyond_noise else "warn"
    details: dict[str, Any] = {
        "drifted": drifted.drifted,
        "score_type": "p_value" if drifted.method in drift.P_VALUE_METHODS else "distance",
        "reference_n": drifted.n_reference,
        "significance_test": test,
        "significance_p_value": p_value,
        "effect": effect,
        "noise_mean": noise.mean,
        **drifted.details,
    }
    if isinstance(window, NumericHist):
        details["outside_reference_range"] = drift.outside_reference_range(window)
    return Finding(
        metric="drift_score",
        feature=name,
        value=drifted.score,
        n=drifted.n,
        threshold=drifted.threshold,
        method=drifted.method,
        status=status,
        details=details,
    )


def _insufficient(metric: str, name: str, n: int, reason: str) -> Finding:
    return Finding(metric=metric, feature=name, n=n, status="insufficient_data", details={"reason": reason})


def _missing_finding(name: str, column: Column, window: Hist) -> Finding:
    rows = window.n + window.missing
    reference_rows = column.hist.n + column.hist.missing
    reference_share = column.hist.missing / reference_rows if reference_rows else 0.0
    share = window.missing / rows
    low, high = wilson(window.missing, rows)
    limit = min(1.0, reference_share + MISSING_TOLERANCE)
    status = "breach" if low > limit else "warn" if share > limit else "ok"
    return Finding(
        metric="missing_share",
        feature=name,
        value=share,
        ci_low=low,
        ci_high=high,
        n=rows,
        threshold=limit,
        status=status,
        details={"missing": window.missing, "reference_share": reference_share, "tolerance": MISSING_TOLERANCE},
    )


def _unseen_finding(name: str, window: CategoricalHist) -> Finding:
    rows = window.unseen_rows
    share = rows / window.n
    status = "ok"
    if rows:
        status = "breach" if share >= UNSEEN_SHARE and rows >= UNSEEN_MIN_ROWS else "warn"
    top = dict(sorted(window.unseen.items(), key=lambda kv: -kv[1])[:TOP_UNSEEN])
    return Finding(
        metric="unseen_categories",
        feature=name,
        value=share,
        n=window.n,
        threshold=UNSEEN_SHARE,
        status=status,
        details={
            "rows": rows,
            "categories": top,
            "distinct": len(window.unseen) + (1 if window.unseen_overflow else 0),
        },
    )


def _feature_findings(
    spec: FeatureSpec, column: Column | None, window: Hist | None, context: KindContext
) -> tuple[list[Finding], ColumnDrift | None, drift.Noise | None]:
    policy = context.policy
    if column is None or column.hist.n == 0:
        return [_insufficient("drift_score", spec.name, 0, "the reference has no values for this feature")], None, None
    assert window is not None
    findings: list[Finding] = []
    if window.n + window.missing:
        findings.append(_missing_finding(spec.name, column, window))
    if window.n < policy.min_window_count:
        reason = f"{window.n} values in the window; the policy's minimum is {policy.min_window_count}"
        findings.insert(0, _insufficient("drift_score", spec.name, window.n, reason))
        return findings, None, None
    drifted = drift.column_drift(
        column,
        window,
        pinned_method=spec.drift_method,
        threshold=spec.drift_threshold,
        distance_threshold=policy.drift_threshold,
    )
    noise = drift.noise(column, window, context.rng(f"noise:{spec.name}"))
    findings.insert(0, _drift_finding(spec.name, drifted, column, window, noise))
    if isinstance(column, CategoricalColumn):
        assert isinstance(window, CategoricalHist)
        findings.append(_unseen_finding(spec.name, window))
    return findings, drifted, noise


def _output_noise(context: KindContext) -> dict[str, drift.Noise]:
    """Noise of the score distribution and of the positive rate, when the window is large enough."""
    reference, window = context.reference, context.window_profile.profile
    minimum = context.policy.min_window_count
    found = {}
    if window.score.n >= minimum and reference.score.hist.n:
        found["score"] = drift.noise(reference.score, window.score, context.rng("noise:score"))
    if window.predictions >= minimum and reference.predictions:
        found["prediction"] = drift.rate_noise(
            (reference.positive_predictions, reference.predictions),
            (window.positive_predictions, window.predictions),
            context.rng("noise:prediction"),
        )
    return found


def _unified_findings(context: KindContext, inputs: dict[str, drift.Noise]) -> tuple[list[Finding], dict[str, Any]]:
    unified = drift.unified_drift(inputs, _output_noise(context))
    if not unified.components:
        return [], {}
    status = (
        "breach" if unified.value >= drift.UNIFIED_BREACH else "warn" if unified.value >= drift.UNIFIED_WARN else "ok"
    )
    top = sorted(unified.components, key=lambda c: -c.contribution)[:5]
    findings = [
        Finding(
            metric="unified_drift",
            value=unified.value,
            n=context.window_profile.profile.rows,
            threshold=drift.UNIFIED_BREACH,
            method="standardized_weighted_sum",
            status=status,
            details={
                "warn_at": drift.UNIFIED_WARN,
                "bootstrap_windows": drift.NOISE_REPLICATES,
                "null_mean": unified.null_mean,
                "null_sd": unified.null_sd,
                "top_contributors": [c.name for c in top],
            },
        )
    ]
    for c in unified.components:
        findings.append(
            Finding(
                metric="unified_drift_contribution",
                feature=c.name,
                value=c.contribution,
                method=c.noise.statistic,
                status="ok",
                details={
                    "family": c.family,
                    "distance": c.noise.distance,
                    "null_mean": c.noise.mean,
                    "null_sd": c.noise.sd,
                    "z": c.z,
                    "weight": c.weight,
                },
            )
        )
    summary = {"unified_drift": unified.value, "unified_status": status, "top_contributors": [c.name for c in top]}
    return findings, summary


def _base_summary(context: KindContext) -> dict[str, Any]:
    built = context.window_profile
    return {
        "rows": built.profile.rows,
        "reference_rows": context.reference.rows,
        "reference_set_id": context.reference_set.id,
        "reference_source": context.reference_set.source,
        "min_window_count": context.policy.min_window_count,
        "days": built.days_total,
        "days_profiled_now": built.days_rebuilt,
        "rows_read": built.rows_read,
        **({"notes": list(context.notes)} if context.notes else {}),
    }


@register("input_drift")
def input_drift(context: KindContext) -> KindResult:
    """Per-feature drift, missing shares, unseen categories, dataset drift share, unified drift."""
    policy = context.policy
    if not policy.features:
        return KindResult.failed("the monitoring policy lists no features to check for drift")
    reference, window = context.reference, context.window_profile.profile
    summary = _base_summary(context)
    findings: list[Finding] = []
    drifted: dict[str, ColumnDrift] = {}
    noises: dict[str, drift.Noise] = {}
    for spec in policy.features:
        column, hist = reference.features.get(spec.name), window.features.get(spec.name)
        feature_findings, result, noise = _feature_findings(spec, column, hist, context)
        findings += feature_findings
        if result is not None and noise is not None:
            drifted[spec.name], noises[spec.name] = result, noise
    if window.rows < policy.min_window_count or not drifted:
        summary["reason"] = f"{window.rows} inferences in the window; the policy's minimum is {policy.min_window_count}"
        return KindResult(status="insufficient_data", summary=summary, findings=findings)
    names = [name for name, result in drifted.items() if result.drifted]
    breached = [f.feature for f in findings if f.metric == "drift_score" and f.status == "breach"]
    share = len(names) / len(drifted)
    findings.append(
        Finding(
            metric="dataset_drift_share",
            value=share,
            n=len(drifted),
            threshold=DATASET_DRIFT_SHARE,
            status="breach" if share >= DATASET_DRIFT_SHARE else "ok",
            details={"drifted_features": names, "beyond_noise": breached},
        )
    )
    unified, unified_summary = _unified_findings(context, noises)
    findings += unified
    summary |= {
        "features": len(policy.features),
        "features_evaluated": len(drifted),
        "drifted_features": names,
        "drift_share": share,
        "dataset_drift": share >= DATASET_DRIFT_SHARE,
        "methods": {name: result.method for name, result in drifted.items()},
        **unified_summary,
    }
    findings += sequential_findings(context, "input_drift")
    return KindResult(status="completed", summary=_with_counts(summary, findings), findings=findings)


def _positive_rate(context: KindContext) -> Finding:
    reference, window = context.reference, context.window_profile.profile
    reference_rate = reference.positive_predictions / reference.predictions
    rate = window.positive_predictions / window.predictions
    low, high = wilson(window.positive_predictions, window.predictions)
    band = (reference_rate * (1 - POSITIVE_RATE_TOLERANCE), reference_rate * (1 + POSITIVE_RATE_TOLERANCE))
    # Both rates are estimates: the two-sample bootstrap says whether they differ at all, the
    # window's interval against the tolerance band whether the difference is material.
    noise = drift.rate_noise(
        (reference.positive_predictions, reference.predictions),
        (window.positive_predictions, window.predictions),
        context.rng("noise:prediction"),
    )
    status = "ok"
    if noise.p_value <= drift.NOISE_ALPHA and (high < band[0] or low > band[1]):
        status = "breach"
    elif noise.p_value <= RATE_WARN_ALPHA:
        status = "warn"
    return Finding(
        metric="positive_rate",
        feature="prediction",
        value=rate,
        ci_low=low,
        ci_high=high,
        n=window.predictions,
        threshold=reference_rate,
        method="wilson",
        status=status,
        details={
            "positives": window.positive_predictions,
            "reference_rate": reference_rate,
            "reference_n": reference.predictions,
            "reference_ci": list(wilson(reference.positive_predictions, reference.predictions)),
            "tolerance": POSITIVE_RATE_TOLERANCE,
            "band": list(band),
            "noise_p_value": noise.p_value,
        },
    )


@register("output_drift")
def output_drift(context: KindContext) -> KindResult:
    """Drift of the score distribution and of the positive-prediction rate."""
    policy = context.policy
    reference, window = context.reference, context.window_profile.profile
    summary = _base_summary(context)
    if window.score.n < policy.min_window_count or not reference.predictions:
        reason = f"{window.score.n} scored inferences in the window; the policy's minimum is {policy.min_window_count}"
        summary["reason"] = reason
        findings = [
            _insufficient("drift_score", "score", window.score.n, reason),
            _insufficient("positive_rate", "prediction", window.predictions, reason),
        ]
        return KindResult(status="insufficient_data", summary=summary, findings=findings)
    score = drift.column_drift(
        reference.score, window.score, pinned_method=None, threshold=None, distance_threshold=policy.drift_threshold
    )
    noise = drift.noise(reference.score, window.score, context.rng("noise:score"))
    findings = [_drift_finding("score", score, reference.score, window.score, noise), _positive_rate(context)]
    rate = findings[1]
    segment_findings = segment_output_findings(context)
    findings += segment_findings
    findings += sequential_findings(context, "output_drift")
    summary |= {
        "score_drift": score.score,
        "score_method": score.method,
        "score_drifted": score.drifted,
        "positive_rate": rate.value,
        "positive_rate_ci": [rate.ci_low, rate.ci_high],
        "reference_positive_rate": rate.threshold,
        "segment_tests": next((f.details["tests"] for f in segment_findings if f.details and "tests" in f.details), 0),
        "segments_drifted": sorted({f.segment for f in segment_findings if f.status == "breach" and f.segment}),
    }
    return KindResult(status="completed", summary=_with_counts(summary, findings), findings=findings)


# ---------------------------------------------------------------------------------------------
# Output drift per segment


def _logit_shift(window: SegmentOutputs, reference: SegmentOutputs) -> float:
    """Shift of the mean log-odds of the score, in the reference segment's standard deviations."""
    diff = window.logit_mean - reference.logit_mean
    sd = math.sqrt(reference.logit_var)
    if sd > 0:
        return diff / sd
    return 0.0 if diff == 0 else math.copysign(math.inf, diff)


def _rank_test(window: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Mann-Whitney on binned scores: (probability that a window score exceeds a reference one,
    two-sided p from the tie-corrected normal approximation). Bins are ties."""
    n_w, n_r = int(window.sum()), int(reference.sum())
    below = np.concatenate([[0], np.cumsum(reference)[:-1]])
    u = float(np.sum(window * (below + 0.5 * reference)))
    total = n_w + n_r
    ties = window + reference
    variance = (
        n_w * n_r / 12.0 * ((total + 1) - float(np.sum(ties.astype(np.float64) ** 3 - ties)) / (total * (total - 1)))
    )
    auc = u / (n_w * n_r)
    if variance <= 0:
        return auc, 1.0
    z = (u - n_w * n_r / 2.0) / math.sqrt(variance)
    return auc, float(2 * stats.norm.sf(abs(z)))


def _two_proportions(window: SegmentOutputs, reference: SegmentOutputs) -> tuple[float, float]:
    """(relative change of the positive rate, pooled two-proportion z-test two-sided p)."""
    x1, n1, x2, n2 = (
        window.positive_predictions,
        window.predictions,
        reference.positive_predictions,
        reference.predictions,
    )
    p1, p2 = x1 / n1, x2 / n2
    effect = (p1 - p2) / p2 if p2 > 0 else (0.0 if p1 == 0 else math.inf)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return effect, 1.0
    return effect, float(2 * stats.norm.sf(abs(p1 - p2) / se))


def _segment_status(effect: float, threshold: float, p_value: float, tests: int) -> str:
    if abs(effect) < threshold:
        return "ok"
    if p_value <= SEGMENT_ALPHA / tests:
        return "breach"
    return "warn" if p_value <= SEGMENT_WARN_ALPHA / tests else "ok"


def segment_output_findings(context: KindContext) -> list[Finding]:
    """Score and positive-rate drift of each value of each segment attribute, Bonferroni over
    the run's segment tests (see the module docstring)."""
    policy = context.policy
    reference, window = context.reference, context.window_profile.profile
    minimum = policy.min_window_count
    findings: list[Finding] = []
    judged: list[tuple[str, SegmentOutputs, SegmentOutputs]] = []
    for attribute in reference.segment_attributes:
        mine, theirs = window.segments.get(attribute, {}), reference.segments.get(attribute, {})
        for value in sorted(mine):
            name, counts, base = f"{attribute}={value}", mine[value], theirs.get(value)
            reason = None
            if (
                base is None
                or base.scored < minimum
                or base.predictions < minimum
                or len(base.bins) != len(counts.bins)
            ):
                have = 0 if base is None else base.scored
                reason = f"{have} reference rows in this segment; the policy's minimum is {minimum}"
            elif counts.scored < minimum or counts.predictions < minimum:
                reason = f"{counts.scored} scored inferences in the segment; the policy's minimum is {minimum}"
            if reason:
                findings += [
                    Finding(
                        metric=m,
                        feature=f,
                        segment=name,
                        n=counts.scored,
                        status="insufficient_data",
                        details={"reason": reason},
                    )
                    for m, f in (("drift_score", "score"), ("positive_rate", "prediction"))
                ]
                continue
            assert base is not None  # no reason: the reference has the segment
            judged.append((name, counts, base))
    # Segments with exactly the same rows (one site, one manufacturer) are one hypothesis.
    primary: dict[tuple[Any, ...], str] = {}
    same_as: dict[str, str] = {}
    for name, counts, base in judged:
        key = (counts.bins.tobytes(), counts.positive_predictions, base.bins.tobytes(), base.positive_predictions)
        if key in primary:
            same_as[name] = primary[key]
        else:
            primary[key] = name
    tests = 2 * len(primary)
    for name, counts, base in judged:
        effect = _logit_shift(counts, base)
        auc, p_value = _rank_test(counts.bins, base.bins)
        status = _segment_status(effect, policy.drift_threshold, p_value, tests)
        common: dict[str, Any] = {
            "tests": tests,
            "alpha": SEGMENT_ALPHA,
            "adjusted_p_value": min(1.0, p_value * tests),
            "p_value": p_value,
        }
        if name in same_as:
            common["same_rows_as"] = same_as[name]
        findings.append(
            Finding(
                metric="drift_score",
                feature="score",
                segment=name,
                value=effect,
                n=counts.scored,
                threshold=policy.drift_threshold,
                method="logit_mean_shift",
                status=status,
                details={
                    **common,
                    "test": "mann_whitney",
                    "probability_higher": auc,
                    "logit_mean": counts.logit_mean,
                    "reference_logit_mean": base.logit_mean,
                    "reference_logit_sd": math.sqrt(base.logit_var),
                    "reference_n": base.scored,
                },
            )
        )
        rate_effect, rate_p = _two_proportions(counts, base)
        rate = counts.positive_predictions / counts.predictions
        low, high = wilson(counts.positive_predictions, counts.predictions)
        findings.append(
            Finding(
                metric="positive_rate",
                feature="prediction",
                segment=name,
                value=rate,
                ci_low=low,
                ci_high=high,
                n=counts.predictions,
                threshold=base.positive_predictions / base.predictions,
                method="two_proportion_z",
                status=_segment_status(rate_effect, POSITIVE_RATE_TOLERANCE, rate_p, tests),
                details={
                    **common,
                    "p_value": rate_p,
                    "adjusted_p_value": min(1.0, rate_p * tests),
                    "relative_change": rate_effect,
                    "tolerance": POSITIVE_RATE_TOLERANCE,
                    "positives": counts.positive_predictions,
                    "reference_positives": base.positive_predictions,
                    "reference_n": base.predictions,
                },
            )
        )
    return findings


# ---------------------------------------------------------------------------------------------
# Sequential drift series (docs/decisions/0503)


@dataclass
class DriftSeries:
    kind: str  # input_drift | output_drift
    metric: str
    feature: str
    segment: str | None
    daily: dict[str, np.ndarray]  # per day of the lookback: totals and sums (place) or successes
    z_of: sequential.WindowZ
    reference: dict[str, float]

    def key(self) -> tuple[Any, ...]:
        """Series with exactly the same data (a site with one manufacturer) are one hypothesis."""
        return (self.metric, self.feature, *(v.tobytes() for v in self.daily.values()), *self.reference.values())


def _place_series(
    kind: str,
    metric: str,
    feature: str,
    segment: str | None,
    days: np.ndarray,
    reference: np.ndarray,
    places: np.ndarray,
    minimum: int,
) -> DriftSeries | None:
    """days: per day (rows, sum of places); reference: the reference sample's (or segment's) bin counts."""
    n, mean, sd = sequential.binned_moments(reference, places)
    if n < minimum or sd <= 0:
        return None
    daily = {"totals": days[:, 0], "sums": days[:, 1]}
    return DriftSeries(kind, metric, feature, segment, daily, sequential.mean_vs_reference(mean, sd, n, pooled=False),
                       {"mean_place": round(mean, 6), "sd_place": round(sd, 6), "reference_n": n})  # fmt: skip


def _rate_series(segment: str | None, days: np.ndarray, reference: tuple[int, int], minimum: int) -> DriftSeries | None:
    """days: per day (predictions, positive predictions)."""
    n, x = reference
    if n < minimum or x <= 0 or x >= n:
        return None
    rate = x / n
    daily = {"totals": days[:, 0], "successes": days[:, 1]}
    return DriftSeries("output_drift", "positive_rate_sequential", "prediction", segment, daily,
                       sequential.proportion_vs_reference(rate, n, pooled=False),
                       {"reference_rate": round(rate, 6), "reference_n": n})  # fmt: skip


def _lookback_days(context: KindContext) -> list[date]:
    """The last sequential.WINDOW whole UTC days before the window's end."""
    end = context.window.end.astimezone(UTC)
    last = end.date() if end.time() != end.time().min else end.date() - timedelta(days=1)
    return [last - timedelta(days=sequential.WINDOW - 1 - i) for i in range(sequential.WINDOW)]


def _column(days: list[dict[str, Any]], *path: str, width: int = 2) -> np.ndarray:
    """(day, width) of the stored totals at path (zeros where a day has none)."""
    out = np.zeros((len(days), width))
    for i, totals in enumerate(days):
        value: Any = totals
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value:
            out[i] = value[:width]
    return out


def drift_series(context: KindContext) -> list[DriftSeries]:
    """Every sequential drift series of the model's version, from the totals stored with the daily
    profiles of the lookback (cached on the context: both drift kinds share them and the budget)."""
    cached = context.__dict__.get("_drift_series")
    if cached is not None:
        return cached
    reference, minimum = context.reference, context.policy.min_window_count
    days = _lookback_days(context)
    stored = stored_sequential_totals(
        context.session, model_id=context.model.id, version_id=context.version.id,
        reference_set_id=context.reference_set.id, reference=reference, first=days[0], last=days[-1],
    )  # fmt: skip
    totals: list[dict[str, Any]] = [stored.get(day) or {} for day in days]
    score = reference.score.hist.counts
    series: list[DriftSeries | None] = [
        _place_series("output_drift", "score_sequential", "score", None, _column(totals, "score"), score,
                      reference_places(score), minimum),
        _rate_series(None, _column(totals, "rate"), (reference.predictions, reference.positive_predictions), minimum),
    ]  # fmt: skip
    for attribute in reference.segment_attributes:
        values = reference.segments.get(attribute, {})
        if not values:
            continue
        size = len(next(iter(values.values())).bins)
        places = reference_places(sum((v.bins for v in values.values()), np.zeros(size)))
        for value in sorted(values):
            base, name = values[value], f"{attribute}={value}"
            outputs = _column(totals, "segments", attribute, value, width=4)
            series.append(_place_series("output_drift", "score_sequential", "score", name, outputs[:, :2], base.bins,
                                        places, minimum))  # fmt: skip
            series.append(_rate_series(name, outputs[:, 2:], (base.predictions, base.positive_predictions), minimum))
    for spec in context.policy.features:
        column = reference.features.get(spec.name)
        if not isinstance(column, NumericColumn):
            continue
        counts = column.hist.counts
        series.append(_place_series("input_drift", "drift_sequential", spec.name, None,
                                    _column(totals, "features", spec.name), counts, reference_places(counts), minimum))  # fmt: skip
    found = [s for s in series if s is not None]
    context.__dict__["_drift_series"] = found
    return found


def sequential_findings(context: KindContext, kind: str) -> list[Finding]:
    """The kind's sequential drift findings; the warning budget is split over every drift series of
    the model (both kinds), series with identical data counted once."""
    every = drift_series(context)
    hypotheses = len({s.key() for s in every})
    budget = sequential.budget_for(context.policy)
    arl0 = budget.arl0("warning", hypotheses)
    days = _lookback_days(context)
    first = days[0].toordinal()
    findings = []
    for series in every:
        if series.kind != kind:
            continue
        reset = context.resets.get((kind, series.metric, series.feature, series.segment))
        start = 0
        if reset is not None and reset < context.window.end:
            start = min(max(reset.astimezone(UTC).date().toordinal() - first, 0), len(days))
        daily = {name: values[start:] for name, values in series.daily.items()}
        rows = int(daily["totals"].sum())
        c = sequential.threshold(arl0, sided="two")

        def iso(day: int | None, start: int = start) -> str | None:
            return None if day is None else date.fromordinal(first + start + day).isoformat()

        reset_on = {"reset_on": iso(0)} if start > 0 else {}
        if rows == 0:
            findings.append(
                Finding(metric=series.metric, feature=series.feature, segment=series.segment, n=0, threshold=c,
                        method="glr", status="insufficient_data",
                        details={"reason": "no rows in the stored daily profiles of the lookback", **reset_on})
            )  # fmt: skip
            continue
        decision = sequential.drift_decision(daily, series.z_of, arl0=arl0)
        findings.append(
            Finding(
                metric=series.metric, feature=series.feature, segment=series.segment,
                value=round(decision.statistic, 4), n=rows, threshold=round(c, 4), method="glr",
                status="breach" if decision.signalled else "ok",
                details={
                    "onset": iso(decision.onset), "signalled_on": iso(decision.day), **reset_on,
                    "sequential": decision.details() | {
                        "arl0_days": round(arl0, 1), "series": hypotheses, "named_series": len(every),
                        "window_days": sequential.WINDOW, **series.reference,
                    },
                },
            )
        )  # fmt: skip
    return findings


def _with_counts(summary: dict[str, Any], findings: list[Finding]) -> dict[str, Any]:
    counted = [f for f in findings if f.metric != "unified_drift_contribution"]
    summary["breaches"] = sum(f.status == "breach" for f in counted)
    summary["warnings"] = sum(f.status == "warn" for f in counted)
    summary["findings"] = [
        {"metric": f.metric, "feature": f.feature, "status": f.status, **({"segment": f.segment} if f.segment else {})}
        for f in counted
        if f.status in ("breach", "warn")
    ]
    return summary
