"""Emit scaled models: compound (alpha^phi, beta^phi, gamma^phi) or the released B1-B7 table."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nas.counting import analytic_count
from nas.runfolder.outputs import write_files
from nas.paths import safe_name
from nas.presets import EFFICIENTNET, efficientnet_variant
from nas.rounding import resolution_multiple, round_resolution, scale_spec
from nas.spec import ArchSpec, SpecError

from .coefficients import TARGET_FACTOR, CoefficientError, Coefficients

# the released B0..B7 dropout rates, indexed by phi
PAPER_DROPOUT = [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]


@dataclass(frozen=True)
class ScaledModel:
    """One emitted model and the multipliers that made it.

    Attributes:
        name: the spec's name (<base>-phi<phi>, or the B1-B7 name for --paper).
        phi: the compound coefficient.
        depth: multiplier of the stage repeats.
        width: multiplier of the channels.
        resolution: input size in pixels, after rounding.
        dropout: classifier dropout (see `dropout_for`).
        spec: the scaled architecture.
    """

    name: str
    phi: float
    depth: float
    width: float
    resolution: int
    dropout: float
    spec: ArchSpec


def parse_phis(text: str) -> list[float]:
    """'1..7' -> [1..7]; '1,2,3'; '-1,0.5,2'; '-2..2'.

    Args:
        text: the --phi value: comma-separated numbers and inclusive integer ranges a..b.
    """
    text = text.replace(" ", "")
    values: list[float] = []
    for part in text.split(","):
        match = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", part)
        try:
            if match:
                lo, hi = int(match.group(1)), int(match.group(2))
                if hi < lo:
                    raise ValueError
                values.extend(float(v) for v in range(lo, hi + 1))
            elif part:
                values.append(float(part))
        except ValueError:
            raise CoefficientError(f"cannot read --phi {text!r}; write e.g. 1..7, 1,2,3 or -1,0.5,2") from None
    if not values:
        raise CoefficientError("--phi names no value")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise CoefficientError(f"--phi {bad[0]:g} is not a finite number; write e.g. 1..7 or 1,2,3")
    far = [v for v in values if abs(v) > MAX_PHI]
    if far:
        raise CoefficientError(f"--phi {far[0]:g} is beyond +-{MAX_PHI} (B7 is phi 7; phi 30 already "
                               "grows depth ~240x); give phi between -30 and 30")
    if len(values) > MAX_PHIS:
        raise CoefficientError(f"--phi names {len(values):,} values; give at most {MAX_PHIS}")
    return values


MAX_PHI = 30          # |phi| beyond this is refused (numbers overflow; nets exceed every limit)
MAX_PHIS = 100        # values one --phi may name
# a realised MACs ratio may miss 2^phi by the grid's default tolerance (0.1 on a ratio of 2,
# `GridConfig.tolerance`) before emission warns
MISS_TOLERANCE = 0.06 / TARGET_FACTOR  # the grid's default tolerance (3 % of 2x), as a share of 2^phi
HUGE_PHI = 10          # warn above this compound coefficient ...
HUGE_RESOLUTION = 16   # ... or above this many times the base resolution


def huge_warnings(base: ArchSpec, table: pd.DataFrame) -> list[str]:
    """One warning line per emitted model that is far beyond the paper's B7 (phi > 10 or a
    resolution above 16x the base's), naming its resolution and MACs."""
    lines = []
    for _, row in table.iterrows():
        if row["phi"] > HUGE_PHI or row["resolution"] > HUGE_RESOLUTION * base.resolution:
            lines.append(f"warning: {row['name']} (phi {row['phi']:g}) is a huge net: "
                         f"{row['resolution']} px input ({row['resolution'] / base.resolution:.0f}x the base), "
                         f"{row['macs'] / 1e9:,.1f} G MACs ({row['realised_ratio']:,.0f}x the base); "
                         "B7 is phi 7")
    return lines


def miss_warnings(table: pd.DataFrame) -> list[str]:
    """One warning line per emitted model whose realised MACs miss 2^phi times the base's by
    more than the grid's tolerance (the `misses_2phi` column of scaled.csv)."""
    return [f"warning: {row['name']} realises {row['realised_ratio']:g}x the base's MACs, not "
            f"2^{row['phi']:g} = {row['ideal_ratio']:.4g}x ({row['deviation_vs_2phi_pct']:+.1f} %, beyond "
            f"the grid's +-{MISS_TOLERANCE * 100:g} %): rounding of depth, width or resolution; treat "
            "its cost as the realised one"
            for _, row in table.iterrows() if row["misses_2phi"]]


def dropout_for(phi: float, base_dropout: float) -> float:
    """The paper's dropout rising from 0.2 (B0) to 0.5 (B7), as an offset on the base's rate;
    interpolated between integer phi, held beyond B7, lowered 0.05 per step below phi = 0.

    Args:
        phi: the compound coefficient.
        base_dropout: the base net's dropout; the result is clipped to [0, 0.9].
    """
    offset = (np.interp(phi, range(8), PAPER_DROPOUT) - PAPER_DROPOUT[0]) if phi >= 0 else 0.05 * phi
    return float(min(0.9, max(0.0, round(base_dropout + offset, 4))))


def _fmt_phi(phi: float) -> str:
    return f"{phi:g}".replace("-", "m")


def compound_model(base: ArchSpec, c: Coefficients, phi: float, multiple: int = 0) -> ScaledModel:
    """depth alpha^phi, width beta^phi, resolution r0 * gamma^phi rounded to `multiple` pixels
    (0: the grid's rule by base resolution, `nas.rounding.resolution_multiple`).

    Args:
        base: the net to scale.
        c: the coefficients alpha, beta, gamma.
        phi: the compound coefficient (negative values shrink the net).
        multiple: resolution rounding in pixels; 0 picks it from the base resolution.
    """
    depth, width = c.alpha ** phi, c.beta ** phi
    resolution = round_resolution(base.resolution * c.gamma ** phi,
                                  resolution_multiple(base.resolution, multiple))
    dropout = dropout_for(phi, base.dropout)
    name = f"{base.name}-phi{_fmt_phi(phi)}"
    try:
        spec = scale_spec(base, depth=depth, width=width, resolution=resolution, dropout=dropout, name=name)
    except SpecError as exc:
        raise CoefficientError(f"phi {phi:g} on {base.name}: {exc}") from None
    return ScaledModel(name, phi, depth, width, resolution, dropout, spec)


def emit_compound(base: ArchSpec, c: Coefficients, phis: list[float], multiple: int = 0
                  ) -> list[ScaledModel]:
    """One scaled model per phi (see `compound_model`).

    Args:
        base: the net to scale.
        c: the coefficients alpha, beta, gamma.
        phis: the compound coefficients, in output order.
        multiple: resolution rounding in pixels; 0 picks it from the base resolution.
    """
    return [compound_model(base, c, phi, multiple) for phi in phis]


def emit_paper(base: ArchSpec, phis: list[float]) -> list[ScaledModel]:
    """The released EfficientNet B1-B7 coefficients applied to an EfficientNet-shaped base.

    Args:
        base: a 7-stage EfficientNet-shaped spec; "b0" in its name becomes the variant's key.
        phis: integers 0..7, one model per value (0: the base itself, as B0).
    """
    if len(base.stages) != 7:
        raise CoefficientError(f"--paper needs an EfficientNet-shaped base (7 stages); {base.name} has "
                               f"{len(base.stages)}. Use --coefficients for other bases")
    bad = [p for p in phis if p not in range(0, 8)]
    if bad:
        raise CoefficientError(f"--paper knows phi = 0..7 only (B0-B7), not {bad[0]:g}")
    models = []
    for phi in phis:
        key = f"b{int(phi)}"
        c = EFFICIENTNET[key]
        name = base.name.replace("b0", key) if "b0" in base.name else f"{base.name}-{key}"
        spec = efficientnet_variant(base, key, name=name)
        models.append(ScaledModel(name, phi, c.depth, c.width, spec.resolution, spec.dropout, spec))
    return models


def scaled_table(base: ArchSpec, models: list[ScaledModel], factor: float) -> pd.DataFrame:
    """One row per model: coefficients, counts, realised MACs ratio next to the nominal ones.

    Args:
        base: the unscaled net the ratios are relative to.
        models: the emitted models.
        factor: the coefficients' MACs factor per unit phi (alpha * beta^2 * gamma^2); the
            formula ratio is factor^phi, the ideal one 2^phi.
    """
    base_macs = analytic_count(base).macs
    rows = []
    for m in models:
        count = analytic_count(m.spec)
        realised = count.macs / base_macs
        rows.append({
            "name": m.name, "phi": m.phi, "depth": round(m.depth, 4), "width": round(m.width, 4),
            "resolution": m.resolution, "dropout": m.dropout, "blocks": m.spec.blocks,
            "macs": count.macs, "params": count.params, "realised_ratio": round(realised, 4),
            "formula_ratio": round(factor ** m.phi, 4), "ideal_ratio": TARGET_FACTOR ** m.phi,
            "deviation_vs_formula_pct": round((realised / factor ** m.phi - 1) * 100, 2),
            "deviation_vs_2phi_pct": round((realised / TARGET_FACTOR ** m.phi - 1) * 100, 2),
            "misses_2phi": bool(abs(realised / TARGET_FACTOR ** m.phi - 1) > MISS_TOLERANCE),
        })
    return pd.DataFrame(rows)


def write_emission(out: Path, base: ArchSpec, models: list[ScaledModel], factor: float) -> pd.DataFrame:
    """Write every model's spec as <name>.yaml and the table as scaled.csv under `out`, under
    its lock; refuse, with `out` untouched, when it holds another emission (see
    `nas.runfolder.outputs.write_files`).

    Args:
        out: the output folder (created when missing).
        base: the unscaled net the ratios are relative to.
        models: the emitted models.
        factor: the coefficients' MACs factor per unit phi (see `scaled_table`).

    Returns:
        the table written to scaled.csv.
    """
    table = scaled_table(base, models, factor)
    files = {f"{safe_name(m.name)}.yaml": m.spec.to_yaml() for m in models}
    files["scaled.csv"] = table.to_csv(index=False)
    write_files(out, files, "emission")
    return table
