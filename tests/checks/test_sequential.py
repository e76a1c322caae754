"""Sequential detection (issue 13): the CUSUM arithmetic against published tables, the GLR's
threshold against its stated in-control ARL, the budget split across series, and the policy fields."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import special
from sqlalchemy.orm import Session

from monitor.checks import cusum, sequential
from monitor.checks.schemas import MonitoringPolicy
from tests.factories import auth, make_keys, make_model

# ------------------------------------------------------------------------------------------------
# The CUSUM arithmetic: integral equation against published tables and an independent Markov chain.


def brook_evans_arl(k: float, h: float, mu: float, states: int = 400) -> float:
    """Brook & Evans (1972): the upper CUSUM as a Markov chain on `states` cells of [0, h]."""
    width = h / (states - 0.5)  # state 0 is the point 0 (the chart at its floor), the others cells
    centres = np.arange(states) * width
    upper = centres[None, :] + width / 2 - centres[:, None] + k - mu
    lower = centres[None, :] - width / 2 - centres[:, None] + k - mu
    transition = special.ndtr(upper) - special.ndtr(lower)
    transition[:, 0] = special.ndtr(width / 2 - centres + k - mu)
    return float(np.linalg.solve(np.eye(states) - transition, np.ones(states))[0])


def test_k_half_h_five_in_control_arl_is_the_tabulated_930_and_the_markov_chain_agrees() -> None:
    one_sided = cusum.arl(0.5, 5.0, 0.0)
    assert one_sided == pytest.approx(930, rel=0.01)  # Siegmund 1985 / Montgomery: ~930 one-sided
    assert cusum.arl(0.5, 5.0, 0.0, sided="two") == pytest.approx(465, rel=0.01)  # Montgomery Table 9.3
    assert brook_evans_arl(0.5, 5.0, 0.0) == pytest.approx(one_sided, rel=0.005)


@pytest.mark.parametrize(
    ("shift", "published"),
    # Montgomery, Introduction to Statistical Quality Control, Table 9.3: two-sided CUSUM, k = 1/2, h = 5.
    [(0.25, 139.0), (0.5, 38.0), (0.75, 17.0), (1.0, 10.4), (1.5, 5.75), (2.0, 4.01), (3.0, 2.57)],
)
def test_k_half_h_five_out_of_control_arls_match_the_textbook(shift: float, published: float) -> None:
    assert cusum.arl(0.5, 5.0, shift, sided="two") == pytest.approx(published, rel=0.03)
    assert brook_evans_arl(0.5, 5.0, shift) == pytest.approx(cusum.arl(0.5, 5.0, shift), rel=0.01)


def test_thresholds_for_large_in_control_arls_are_found() -> None:
    # A budget split over 60 series asks ARL0s of tens of thousands of days; past h ~ 20 the old
    # fixed bracket made the solve return NaN for k >= 1 and the search failed.
    for k in (0.25, 0.5, 1.0):
        h = cusum.threshold_for_arl(k, 96_000, sided="upper")
        assert cusum.arl(k, h, 0.0) == pytest.approx(96_000, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# The GLR: the threshold gives the stated ARL0; unknown shift sizes are caught; the onset estimated.


def _null_run_lengths(c: float, runs: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(runs):
        x = rng.standard_normal(length)
        hit = sequential.glr({"sums": x, "totals": np.ones(length)}, sequential.mean_vs_reference(0.0, 1.0, 1e15),
                             sided="upper").first_above(c)  # fmt: skip
        out.append(length if hit is None else hit + 1)
    return np.array(out)


def test_glr_threshold_gives_the_stated_in_control_arl() -> None:
    c = sequential.threshold(400, sided="upper")
    assert sequential.arl0_of(c, sided="upper") == pytest.approx(400, rel=1e-6)
    lengths = _null_run_lengths(c, runs=400, length=4000, seed=11)
    # 400 run lengths of a roughly geometric law: standard error ~5%.
    assert lengths.mean() == pytest.approx(400, rel=0.15)


def test_both_directions_halve_the_arl_and_more_series_raise_the_threshold() -> None:
    assert sequential.arl0_of(4.0, sided="two") == pytest.approx(sequential.arl0_of(4.0) / 2)
    budget = sequential.Budget()
    few, many = budget.arl0("critical", 20), budget.arl0("critical", 60)
    assert sequential.threshold(many) > sequential.threshold(few)
    # The model's expected false criticals per year stay at the budget whatever the series count.
    for series in (20, 60, 200):
        assert series * 365.25 / budget.arl0("critical", series) == pytest.approx(1.0)
        assert series * 365.25 / 12 / budget.arl0("warning", series) == pytest.approx(1.0)


def test_a_sensitivity_drop_is_caught_without_a_shift_size_and_its_onset_estimated() -> None:
    rng = np.random.default_rng(3)
    c = sequential.threshold(sequential.Budget().arl0("critical", 46))
    delays, onsets = [], []
    for _ in range(40):
        cases = rng.poisson(8, 120)
        truth = np.where(np.arange(120) < 60, 0.92, 0.80)
        successes = rng.binomial(cases, truth)
        path = sequential.glr({"successes": successes, "totals": cases}, sequential.proportion_vs_target(0.90))
        decision = sequential.decide(path, c)
        assert decision.day is None or decision.day >= 60 - 5  # no alarm while sensitivity sits at 0.92
        if decision.signalled and decision.day is not None and decision.onset is not None:
            delays.append(decision.day - 60 + 1)
            onsets.append(decision.onset)
    assert len(delays) >= 36  # within 60 days of the drop
    assert np.median(delays) <= 35
    assert abs(np.median(onsets) - 60) <= 7  # the change point, not the first day of the series


def test_the_reference_samples_own_error_is_in_the_variance() -> None:
    # A small segment: 250 reference rows, 15 a day. Every window is compared with the same reference
    # mean; a long window's Z is N(0, 1) only when the reference's variance is counted.
    rng = np.random.default_rng(5)
    counted, ignored = [], []
    for _ in range(2000):
        reference = rng.standard_normal(250).mean()
        window = rng.standard_normal(15 * 56).mean()
        sums = {"sums": np.array([[window * 15 * 56]]), "totals": np.array([[15.0 * 56]])}
        sums |= {"prior_sums": np.zeros((1, 1)), "prior_totals": np.zeros((1, 1))}
        counted.append(sequential.mean_vs_reference(reference, 1.0, 250, pooled=False)(sums)[0, 0])
        ignored.append((window - reference) * np.sqrt(15 * 56))
    assert np.std(counted) == pytest.approx(1.0, abs=0.06)
    assert np.std(ignored) > 1.8


def test_decision_reports_statistic_threshold_and_onset() -> None:
    successes, cases = np.array([8, 8, 8, 2, 3, 2, 2, 3]), np.full(8, 8)
    path = sequential.glr({"successes": successes, "totals": cases}, sequential.proportion_vs_target(0.9))
    decision = sequential.decide(path, 3.0)
    assert decision.signalled and decision.onset == 3 and decision.day is not None and decision.day >= 3
    assert decision.details()["threshold"] == 3.0 and decision.z < -3.0
    quiet = sequential.decide(path, 50.0)
    assert not quiet.signalled and quiet.onset is None and quiet.statistic == pytest.approx(path.statistic[-1])


def test_window_sums_pool_each_window_and_the_days_before_it() -> None:
    sums = sequential.window_sums({"totals": np.array([8.0, 8, 9, 7])}, window=3)
    assert sums["totals"][2, 0] == 9 and sums["totals"][2, 2] == 25  # day 2 alone; days 0-2
    assert np.isnan(sums["totals"][1, 2])  # no day before day 0
    assert sums["prior_totals"][3, 0] == 25 and sums["prior_totals"][3, 1] == 16


# ------------------------------------------------------------------------------------------------
# The budget in the policy.


def test_policy_budget_defaults_and_validation() -> None:
    policy = MonitoringPolicy()
    assert (policy.false_criticals_per_year, policy.false_warnings_per_month) == (1.0, 1.0)
    budget = sequential.budget_for(MonitoringPolicy(false_criticals_per_year=0.5))
    assert budget.arl0("critical", 10) == pytest.approx(2 * 365.25 * 10)
    with pytest.raises(ValueError, match="false_warnings_per_month"):
        MonitoringPolicy(false_warnings_per_month=0)


@pytest.fixture
def keys(session: Session) -> dict[str, str]:
    make_model(session)
    return make_keys(session)


def test_budget_is_saved_with_the_policy_and_a_bad_one_answers_422(client: TestClient, keys: dict[str, str]) -> None:
    body = {"false_criticals_per_year": 0.5, "false_warnings_per_month": 2}
    saved = client.put("/api/v1/models/ich-ct/policy", json=body, headers=auth(keys["qa"]))
    assert saved.status_code == 200, saved.text
    served = client.get("/api/v1/models/ich-ct/policy", headers=auth(keys["viewer"])).json()
    assert served["false_criticals_per_year"] == 0.5 and served["false_warnings_per_month"] == 2
    bad = client.put("/api/v1/models/ich-ct/policy", json={"false_criticals_per_year": -1}, headers=auth(keys["qa"]))
    assert bad.status_code == 422 and "false_criticals_per_year" in bad.json()["error"]["message"]


def test_a_bins_place_is_its_mid_rank_share_of_the_reference_so_the_reference_averages_one_half() -> None:
    # The drift series' daily statistic (docs/decisions/0503): exact from a daily profile's bin counts.
    places = sequential.binned_places(np.array([1, 1, 1, 1]))
    assert np.allclose(places, [0.125, 0.375, 0.625, 0.875])
    reference = np.array([30, 0, 50, 20])
    n, mean, sd = sequential.binned_moments(reference, sequential.binned_places(reference))
    assert n == 100 and abs(mean - 0.5) < 1e-12 and sd > 0
    # A window whose values all sit in the top bin lies far above the reference's mean place.
    z_of = sequential.mean_vs_reference(mean, sd, n, pooled=False)
    places = sequential.binned_places(reference)
    top = np.array([0, 0, 0, 40])
    decision = sequential.drift_decision(
        {"totals": np.array([40.0] * 5), "sums": np.array([float(top @ places)] * 5)}, z_of, arl0=1000.0
    )
    assert decision.signalled and decision.z > 0
