"""The arithmetic of a paired comparison that includes the test set, and Holm's correction.

Method (a variance decomposition, not a bootstrap): two models A and B trained with the same
n seeds are scored on the same m test images; a_si, b_si are 1 when seed s got image i right.

- seed component   V_seed  = var_s(d_s) / n,  d_s = mean_i(b_si - a_si)   (ddof 1)
- image component  V_image = var_i(e_i) / m,  e_i = mean_s(b_si - a_si)   (ddof 1)
- V = V_seed + V_image, with df = n - 1 degrees of freedom (the seeds are the scarce level;
  a Welch-Satterthwaite df would grow with the image term and could make the interval
  narrower than the seed-only one, so it is not used);
- 95 % interval mean(d) ± t_{0.975, n-1} sqrt(V); two-sided p = 2 P(T_{n-1} > |mean| / sqrt(V)).

V_image is the paired test-set noise: only images the two models disagree on (discordant
images) make e_i non-zero, so it is the McNemar-style variance of the difference. Both
components contain the seed-by-image residual once, so V is slightly conservative, and the
interval is never narrower than the seed-only one. Without
per-image outcomes V = V_seed and df = n - 1 (the seed-only Student-t interval).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats as _sp

ALPHA = 0.05


@dataclass(frozen=True)
class PairedVariance:
    """The pieces of one paired interval (units of the inputs).

    Attributes:
        mean: mean over seeds of the paired difference.
        seed_var: V_seed (None below 2 seeds).
        image_var: V_image (None without per-image outcomes).
        df: degrees of freedom of the t quantile (None without an interval).
        images: test images per seed (0 without per-image outcomes).
        discordant: images on which the two models' seed-averaged outcomes differ.
    """
    mean: float
    seed_var: Optional[float]
    image_var: Optional[float]
    df: Optional[float]
    images: int = 0
    discordant: int = 0

    @property
    def variance(self) -> Optional[float]:
        """V = V_seed + V_image (None without a seed component)."""
        if self.seed_var is None:
            return None
        return self.seed_var + (self.image_var or 0.0)

    def half_width(self, confidence: float = 1 - ALPHA) -> Optional[float]:
        """t_{(1+c)/2, df} sqrt(V); 0.0 for a zero variance, None without an interval."""
        v = self.variance
        if v is None or self.df is None:
            return None
        return 0.0 if v == 0 else float(_sp.t.ppf(0.5 + confidence / 2, self.df)) * math.sqrt(v)

    def p_value(self) -> Optional[float]:
        """Two-sided p of mean = 0; None without an interval or with a zero variance."""
        v = self.variance
        if not v or self.df is None:
            return None
        return float(2 * _sp.t.sf(abs(self.mean) / math.sqrt(v), self.df))


def paired_variance(diffs: Sequence[float], a_out: Optional[np.ndarray] = None,
                    b_out: Optional[np.ndarray] = None) -> PairedVariance:
    """The decomposition above for one pair of models.

    Args:
        diffs: per-seed differences d_s = acc_B,s - acc_A,s.
        a_out: n x m array of A's per-image outcomes (seeds in the order of diffs), or None.
        b_out: the same for B, or None.
    """
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n == 0:
        return PairedVariance(float("nan"), None, None, None)
    seed_var = float(d.var(ddof=1)) / n if n > 1 else None
    if a_out is None or b_out is None or seed_var is None:
        return PairedVariance(float(d.mean()), seed_var, None, None if seed_var is None else n - 1)
    e = (np.asarray(b_out, dtype=float) - np.asarray(a_out, dtype=float)).mean(axis=0)
    m = len(e)
    image_var = float(e.var(ddof=1)) / m if m > 1 else 0.0
    return PairedVariance(float(d.mean()), seed_var, image_var, n - 1, m, int(np.count_nonzero(e)))


def holm(pvalues: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm's step-down adjusted p-values, in the input order (None stays None and is not
    counted in the family).

    Sort the k p-values; the i-th smallest (i = 1..k) becomes max over j <= i of
    min(1, (k - j + 1) p_(j)). An adjusted p below alpha is resolved at family-wise level alpha.
    """
    present = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    k = len(present)
    adjusted: list[Optional[float]] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (k - rank) * p))
        adjusted[i] = running
    return adjusted
