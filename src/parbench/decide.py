"""The method's decisions (docs/method.md): a ratio of two throughputs estimated from rounds, its
interval, and one of four words with a margin: `faster`, `slower`, `equivalent`, `cannot tell`.

A ratio is measured on the log scale, one value per round (paired: two runs of the same round) or per
run (unpaired: two sweeps), with Student's t. Why t and not a bootstrap over rounds: with the 3-10
rounds a sweep affords, a percentile bootstrap covers far too little, while t on logs is exact for
log-normal noise. Coverage of the two-sided 90 % interval of a mean log ratio (normal logs, sd 0.07,
2000 seeds per number of rounds; tests/test_method.py, test_the_t_interval_covers_where_a_bootstrap_over_rounds_does_not):

    rounds       3      4      5      6      7      8      9     10
    t        90.1 % 90.8 % 89.8 % 89.1 % 89.3 % 90.0 % 90.5 % 91.0 %
    bootstrap 60.7 % 76.2 % 78.4 % 80.3 % 81.1 % 82.8 % 84.4 % 84.5 %

(the bootstrap: 1000 resamples of the rounds, 5th and 95th percentiles of their means). Pure functions
of numbers; nothing here reads a table.
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Student's t from scipy.special's functions, as scipy.stats.t computes it: importing scipy.stats took half a second
# of every job that reads the tables (aggregate, compare, report), scipy.special a fifth.
from scipy import special

DEFAULT_MARGIN = 0.05  # config `margin`: differences smaller than this share are not worth a claim
ALPHA = 0.05  # each one-sided test; the interval shown is the matching two-sided 90 % one (TOST's)
POWER = 0.8  # for the smallest detectable difference and the rounds a decision would need
FASTER, SLOWER, EQUIVALENT, CANNOT_TELL = "faster", "slower", "equivalent", "cannot tell"
WORDS = (FASTER, SLOWER, EQUIVALENT, CANNOT_TELL)
MAX_ROUNDS = 1000  # rounds_needed above this is reported as None: no affordable sweep decides it


def t_cdf(x, df):
    return special.stdtr(df, x)


def t_sf(x, df):
    return special.stdtr(df, -x)


def t_ppf(q, df):
    """scipy.stats.t.ppf: stdtrit gives +inf at q = 0, where the quantile is -inf."""
    return np.where(np.asarray(q) == 0, -np.inf, special.stdtrit(df, q))


@lru_cache(maxsize=4096)
def t_quantile(q: float, df: float) -> float:
    """Student's t quantile (cached: rounds_needed and the simulation tests ask for the same few thousands of times)."""
    return float(t_ppf(q, df))


@dataclass(frozen=True)
class Ratio:
    """One ratio a / b from its log values: n values, their mean and standard error, and t's degrees of freedom."""

    n: int
    mean: float  # of the log ratios
    se: float  # standard error of `mean` (nan with one value)
    df: float
    sd: float  # the spread of one value (paired: of one round's log ratio)

    @property
    def estimate(self) -> float:
        """The geometric mean of the ratios."""
        return math.exp(self.mean)

    def interval(self, alpha: float = ALPHA) -> tuple[float, float]:
        """The two-sided 1 - 2·alpha interval of the ratio (nan, nan with fewer than two values)."""
        if self.n < 2 or not self.se == self.se:
            return math.nan, math.nan
        half = t_quantile(1 - alpha, self.df) * self.se
        return math.exp(self.mean - half), math.exp(self.mean + half)

    def p_beyond(self, margin: float) -> tuple[float, float]:
        """One-sided p-values of 'a is faster than b by more than margin' and 'a is slower by more than margin'."""
        d = math.log1p(margin)
        if self.n < 2 or not self.se >= 0:
            return 1.0, 1.0
        if self.se == 0:  # identical values: certainty either way
            return float(self.mean <= d), float(self.mean >= -d)
        return float(t_sf((self.mean - d) / self.se, self.df)), float(t_cdf((self.mean + d) / self.se, self.df))

    def p_equivalent(self, margin: float) -> float:
        """TOST: the larger of the two one-sided p-values of 'within ±margin' (small: equivalent)."""
        d = math.log1p(margin)
        if self.n < 2 or not self.se >= 0:
            return 1.0
        if self.se == 0:
            return float(abs(self.mean) >= d)
        return float(max(t_sf((self.mean + d) / self.se, self.df), t_cdf((self.mean - d) / self.se, self.df)))


def paired(a, b) -> Ratio:
    """The ratio of a over b from paired values (a[i] and b[i] measured in the same round)."""
    logs = np.log(np.asarray(a, float)) - np.log(np.asarray(b, float))
    return from_logs(logs)


def from_logs(logs) -> Ratio:
    """A ratio from one log value per round (already paired)."""
    logs = np.asarray(logs, float)
    logs = logs[np.isfinite(logs)]
    n = len(logs)
    if n == 0:
        return Ratio(0, math.nan, math.nan, math.nan, math.nan)
    sd = float(np.std(logs, ddof=1)) if n > 1 else math.nan
    return Ratio(n, float(np.mean(logs)), sd / math.sqrt(n) if n > 1 else math.nan, n - 1, sd)


def unpaired(a, b) -> Ratio:
    """The ratio of a's geometric mean over b's from independent values (two sweeps): Welch's t on the logs."""
    la, lb = (np.log(np.asarray(x, float)) for x in (a, b))
    la, lb = la[np.isfinite(la)], lb[np.isfinite(lb)]
    if len(la) < 2 or len(lb) < 2:
        n = min(len(la), len(lb))
        mean = float(np.mean(la) - np.mean(lb)) if n else math.nan
        return Ratio(n, mean, math.nan, math.nan, math.nan)
    return welch(float(np.mean(la)), float(np.std(la, ddof=1)), len(la), float(np.mean(lb)), float(np.std(lb, ddof=1)), len(lb))


def welch(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int) -> Ratio:
    """The ratio of two geometric means from each side's mean and sd of logs over n values (Welch's t)."""
    if n_a < 2 or n_b < 2 or not (sd_a == sd_a and sd_b == sd_b):
        return Ratio(min(n_a, n_b), mean_a - mean_b, math.nan, math.nan, math.nan)
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1)) if se > 0 else n_a + n_b - 2
    # sd: of one value of either side, as if paired (what one more run on each side would add).
    return Ratio(min(n_a, n_b), mean_a - mean_b, se, df, se * math.sqrt(min(n_a, n_b)))


def holm(pvalues, alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down: which hypotheses of a family are rejected, with family-wise error at most alpha."""
    p = list(pvalues)
    rejected = [False] * len(p)
    for rank, i in enumerate(sorted(range(len(p)), key=lambda i: p[i])):
        if p[i] > alpha / (len(p) - rank):
            break
        rejected[i] = True
    return rejected


def verdicts(ratios: list[Ratio], margin: float, alpha: float = ALPHA) -> list[str]:
    """One word per ratio of a family (for example every cell of a workload against its reference).

    `faster`/`slower`: beyond the margin, by a one-sided t test at alpha after Holm's correction over
    the family (each ratio's smaller directional p-value, doubled: either direction counts as a claim);
    `equivalent`: the 90 % interval lies inside ±margin (two one-sided tests, each at alpha);
    `cannot tell`: neither.
    """
    directional = [r.p_beyond(margin) for r in ratios]
    different = holm([min(1.0, 2 * min(p)) for p in directional], alpha)
    out = []
    for r, (p_up, p_down), diff in zip(ratios, directional, different):
        if diff:
            out.append(FASTER if p_up < p_down else SLOWER)
        elif r.p_equivalent(margin) < alpha:
            out.append(EQUIVALENT)
        else:
            out.append(CANNOT_TELL)
    return out


def verdict(r: Ratio, margin: float, family: int = 1, alpha: float = ALPHA) -> str:
    """One ratio's word as a member of a family of `family` comparisons judged at Holm's strictest step
    (Bonferroni's: the others are not in hand, e.g. the A/A twin against its workload's family)."""
    p_up, p_down = r.p_beyond(margin)
    if min(1.0, 2 * min(p_up, p_down)) <= alpha / max(family, 1):
        return FASTER if p_up < p_down else SLOWER
    return EQUIVALENT if r.p_equivalent(margin) < alpha else CANNOT_TELL


def _quantiles(n: int, level: float, power: float) -> float:
    """t's quantiles of a one-sided test at `level` plus those of the power, with n - 1 degrees of freedom."""
    df = max(n - 1, 1)
    return t_quantile(1 - level, df) + t_quantile(power, df)


def detectable(sd: float, n: int, margin: float, alpha: float = ALPHA, power: float = POWER, family: int = 1) -> float:
    """The smallest true difference (a share: 0.1 is 10 %) that `n` rounds with this spread call
    faster with the given power, one family member of `family` at Holm's strictest step (nan: unknown)."""
    if n < 2 or not sd == sd:
        return math.nan
    return math.expm1(math.log1p(margin) + _quantiles(n, alpha / (2 * family), power) * sd / math.sqrt(n))


@lru_cache(maxsize=256)
def _sufficient(level: float, power: float) -> np.ndarray:
    """_quantiles(n, level, power) / sqrt(n) for n = 2 .. MAX_ROUNDS (index n - 2): what a spread of 1 leaves resolvable."""
    n = np.arange(2, MAX_ROUNDS + 1)
    return (t_ppf(1 - level, n - 1) + t_ppf(power, n - 1)) / np.sqrt(n)


def rounds_needed(r: Ratio, margin: float, alpha: float = ALPHA, power: float = POWER, family: int = 1) -> int | None:
    """How many rounds the observed spread says would decide this ratio (faster/slower if its estimate
    lies beyond the margin, equivalent if inside), with the given power; None: more than MAX_ROUNDS,
    or the estimate sits on the margin, or no spread is known."""
    if not r.sd == r.sd or r.n < 2:
        return None
    gap = abs(abs(r.mean) - math.log1p(margin))
    if gap == 0:
        return None
    if r.sd == 0:
        return 2
    inside = abs(r.mean) < math.log1p(margin)
    # Equivalence: two one-sided tests at alpha; a difference: the doubled test of `verdicts`.
    enough = np.nonzero(_sufficient(alpha if inside else alpha / (2 * family), power) * r.sd <= gap)[0]
    return int(enough[0]) + 2 if len(enough) else None
