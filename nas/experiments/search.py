"""`nas search` as an experiment: check the settings against the space and any earlier run,
then the study's workers under the folder's lock, then trials.csv, the front, best.yaml and
the summary."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..search.engine import SearchConfig, check_search, search_locked
from ..search.baselines import with_pinned_mode
from ..search.report import SAMPLED_FILE, cost_line, write_outputs
from ..search.space import SearchSpace, load_space
from . import Log, Trainer


@dataclass
class SearchExperiment:
    """One search (its settings: `SearchConfig`); `summary` is set by `report`."""

    config: SearchConfig
    summary: Optional[dict] = None
    space: Optional[SearchSpace] = None  # config.space, loaded once (in `check`, when not given)

    def check(self, log: Log = print) -> None:
        """The pinned baseline mode of an earlier run read back; target, evaluators, data size and
        the baselines' memory checked (nas.search.engine.check_search) before any lock."""
        self.config = with_pinned_mode(self.config, log)
        self.space = self.space or load_space(self.config.space)
        check_search(self.config, self.space)

    def run(self, trainer: Optional[Trainer], log: Log = print) -> Any:
        """The study, after its workers stop (trials done, --timeout or the non-training cap)."""
        return search_locked(self.config, log, trainer, self.space)

    def report(self, study: Any, log: Log = print) -> Path:
        """Every output file, and the best candidate and the search's cost in a few lines."""
        out = Path(self.config.out)
        self.summary = write_outputs(study, self.config, self.space or load_space(self.config.space))
        best = self.summary["best"]
        if best:
            kind = f" (baseline {best['baseline']})" if best["baseline"] else ""
            latency = f", {best['latency_ms']:.3g} ms measured" if best.get("latency_ms") is not None else ""
            log(f"best: trial #{best['trial']}{kind} val {best['val_acc'] * 100:.2f}% at "
                f"{best['macs'] / 1e6:.2f} M MACs{latency} (reward {best['reward']:.4f}) -> {out}/best.yaml")
            if best["baseline"]:
                log(f"the search found no sampled candidate better than baseline {best['baseline']} at "
                    f"this budget (summary.md compares the best sampled one with it)")
            sampled = ", best_sampled.yaml" if (out / SAMPLED_FILE).is_file() else ""
            log(f"outputs: {out}/trials.csv, pareto.csv, best.yaml{sampled}, summary.md, summary.json, "
                "pareto.png, history.png, cost.json")
        else:
            log(f"no candidate finished training; nothing to call best (outputs: {out}/trials.csv, "
                "cost.json); re-run to go on")
        log(cost_line(self.summary["cost"]))
        return out / "summary.md"
