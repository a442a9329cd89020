"""The sentence that states a proxy's fidelity (what `nas fidelity` measured), shared by the
fidelity table, the search summary and the pipeline report without importing either."""
from __future__ import annotations

TOO_FEW_TO_TELL = "too few to tell"


def describe(summary: dict) -> str:
    """One sentence: tau and rho with their intervals, the permutation p and the usable-proxy
    verdict (or "too few to tell" below 8 candidates), and the proxy's seed noise."""
    def iv(low, high):
        return "" if low is None else f" [95 % bootstrap {low:.2f}, {high:.2f}]"
    noise = (f"; proxy seed noise ±{summary['proxy_seed_sd_pts']:.2f} pts (sd)"
             if summary.get("proxy_seed_sd_pts") is not None else "")
    head = f"proxy `{summary['proxy_recipe']}` vs `{summary['long_recipe']}` over {summary['candidates']} candidates"
    if summary.get("tau") is None:
        return f"{head}: {summary.get('verdict', TOO_FEW_TO_TELL)}{noise}"
    perm = "" if summary.get("p_perm") is None else f", permutation p {summary['p_perm']:.3g}"
    verdict = f"; {summary['verdict']}" if summary.get("verdict") else ""
    return (f"{head}: Kendall tau {summary['tau']:.2f}{iv(summary['tau_low'], summary['tau_high'])}{perm}, "
            f"Spearman rho {summary['rho']:.2f}{iv(summary['rho_low'], summary['rho_high'])}{verdict}{noise}")
