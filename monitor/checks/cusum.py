"""CUSUM on daily sensitivity / specificity, with its threshold derived from a target in-control ARL.

As FDA's AIM-CU tool does, each day's figure is standardized, the reference value k is half the
shift to detect (in standard deviations of one day's figure) and the decision threshold h is the
one whose in-control average run length (ARL0) equals the target. AIM-CU gets the ARL from R's
`spc` package; here it is computed the same way spc does, by solving the ARL integral equation
of a CUSUM of normal observations (Page 1954; Vance 1986; Nystroem method on Gauss-Legendre
nodes):

    L(u) = 1 + Phi(k - u - mu) L(0) + integral_0^h phi(y - u + k - mu) L(y) dy

for the upper chart S_t = max(0, S_{t-1} + X_t - k) with X_t ~ N(mu, 1) and a signal when S_t > h.
The lower chart (a decrease: degradation) is the upper chart of -X. h for a target ARL0 is the
root of L(0; k, h, mu=0) = ARL0 (it increases in h). Siegmund's approximation
ARL = (exp(-2 D b) + 2 D b - 1) / (2 D^2), D = mu - k, b = h + 1.166, is kept as a cross-check.

Daily standardization: each day's count of successes x_t among n_t cases (positives for
sensitivity, negatives for specificity) becomes a mid-p normal score under Binomial(n_t, mu0)
(see `standardize`); days without cases are skipped. mu0 is the in-control value: the labelled
reference's figure when it has the policy's minimum counts, else the target. With few cases a
day the scores are discrete, so the realized ARL0 differs from the normal-theory design: the test
suite measures it (tests/checks/test_stats.py). The chart is an extra detector: its signal is a
`warn`, never a breach on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special, stats

DEFAULT_ARL0 = 365.0  # one false signal a year per monitored series, in control
DEFAULT_SHIFT = 1.0  # the decrease to detect, in standard deviations of one day's figure (AIM-CU: k = 0.5)
NODES = 48


@lru_cache(maxsize=4096)
def arl(k: float, h: float, mu: float = 0.0, *, sided: str = "upper", nodes: int = NODES) -> float:
    """Average run length of a CUSUM of N(mu, 1) observations (zero start).

    sided: "upper" (detects increases), "lower" (decreases: the upper chart of -X), or "two"
    (both charts; 1/ARL = 1/ARL_upper + 1/ARL_lower, Lucas & Crosier's combination)."""
    if sided == "lower":
        return arl(k, h, -mu, sided="upper", nodes=nodes)
    if sided == "two":
        return 1.0 / (1.0 / arl(k, h, mu, nodes=nodes) + 1.0 / arl(k, h, -mu, nodes=nodes))
    if h <= 0:
        return 1.0
    x, w = np.polynomial.legendre.leggauss(nodes)
    y, w = h / 2.0 * (x + 1.0), h / 2.0 * w
    starts = np.concatenate([[0.0], y])  # unknowns: L(0), then L at the nodes
    kernel = np.exp(-0.5 * (y[None, :] - starts[:, None] + k - mu) ** 2) / np.sqrt(2 * np.pi) * w[None, :]
    matrix = np.eye(nodes + 1)
    matrix[:, 0] -= special.ndtr(k - starts - mu)
    matrix[:, 1:] -= kernel
    return float(np.linalg.solve(matrix, np.ones(nodes + 1))[0])


def siegmund_arl(k: float, h: float, mu: float = 0.0) -> float:
    """Siegmund's (1985) approximation of the upper chart's ARL."""
    drift, b = mu - k, h + 1.166
    if abs(drift) < 1e-9:
        return b * b
    return (np.exp(-2 * drift * b) + 2 * drift * b - 1) / (2 * drift * drift)


@lru_cache(maxsize=512)
def threshold_for_arl(k: float, arl0: float = DEFAULT_ARL0, *, sided: str = "lower") -> float:
    """The h whose in-control ARL equals arl0."""
    if arl0 <= 1:
        raise ValueError(f"the in-control ARL must exceed 1; got {arl0}")
    target = np.log(arl0)
    high = 1.0
    while arl(k, high, 0.0, sided=sided) < arl0:  # bracket: past ARLs of ~1e15 the solve loses precision
        high *= 1.5
        if high > 60:
            raise ValueError(f"no threshold below 60 gives an in-control ARL of {arl0} at k={k}")
    return float(optimize.brentq(lambda h: np.log(arl(k, h, 0.0, sided=sided)) - target, 1e-3, high, xtol=1e-10))


@dataclass(frozen=True)
class Design:
    k: float
    h: float
    arl0: float
    shift: float  # in standard deviations of one day's figure
    arl1: float  # expected days to signal a sustained shift of that size


def design(*, shift: float = DEFAULT_SHIFT, arl0: float = DEFAULT_ARL0) -> Design:
    """k = shift / 2 (optimal for a normal mean shift), h from the target in-control ARL."""
    k = shift / 2.0
    h = threshold_for_arl(k, arl0, sided="lower")
    return Design(k=k, h=h, arl0=arl0, shift=shift, arl1=arl(k, h, -shift, sided="lower"))


@dataclass
class Chart:
    days: np.ndarray  # day index of each point (days without cases are skipped)
    z: np.ndarray
    statistic: np.ndarray  # lower CUSUM after each point
    design: Design
    mu0: float

    @property
    def signal_days(self) -> np.ndarray:
        return self.days[self.statistic > self.design.h]

    @property
    def last(self) -> float:
        return float(self.statistic[-1]) if len(self.statistic) else 0.0

    @property
    def signalling(self) -> bool:
        return self.last > self.design.h


def standardize(successes: np.ndarray, totals: np.ndarray, mu0: float) -> np.ndarray:
    """Each day's count as a mid-p normal score under Binomial(n_t, mu0); NaN on days without cases.

    z_t = Phi^-1(P(X < x_t) + P(X = x_t) / 2). Unlike (p_t - mu0) / se, whose left tail is heavy
    when mu0 is near 1 and n_t is small (realized ARL0 ~220 days for a 365-day design at 8 cases
    a day), the mid-p score is close to N(0, 1) in control with a variance slightly below 1, so
    the realized ARL0 is at or above the design."""
    successes, totals = np.asarray(successes, dtype=np.float64), np.asarray(totals, dtype=np.float64)
    mu0 = min(max(mu0, 1e-6), 1 - 1e-6)
    n = np.where(totals > 0, totals, 1.0)
    mid = stats.binom.cdf(successes - 1, n, mu0) + 0.5 * stats.binom.pmf(successes, n, mu0)
    return np.where(totals > 0, special.ndtri(np.clip(mid, 1e-300, 1 - 1e-16)), np.nan)


def lower_cusum(z: np.ndarray, k: float) -> np.ndarray:
    """S_t = max(0, S_{t-1} - z_t - k): grows while the figure stays below mu0."""
    statistic = np.empty(len(z))
    current = 0.0
    for i, value in enumerate(z):
        current = max(0.0, current - value - k)
        statistic[i] = current
    return statistic


def daily_chart(successes: np.ndarray, totals: np.ndarray, *, mu0: float, chart_design: Design | None = None) -> Chart:
    """The lower CUSUM of a daily proportion (e.g. TP / positives per day) around mu0."""
    chart_design = chart_design or design()
    z = standardize(successes, totals, mu0)
    days = np.flatnonzero(np.isfinite(z))
    z = z[days]
    return Chart(days=days, z=z, statistic=lower_cusum(z, chart_design.k), design=chart_design, mu0=mu0)
