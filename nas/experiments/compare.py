"""`nas compare` as an experiment: several nets, one recipe, the same seeds, paired verdicts.

The naming rules (distinct names, no run-N), the reference, the optional rescaling of every
other net to one MACs target (`match_macs`) and the refusal of two names for one network are
decided here, in `check`, before anything is decoded at size, locked or trained.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import NasError
from ..paths import safe_name
from ..recipe import Recipe
from ..settings import DataRequest
from ..spec import ArchSpec
from . import Log, Trainer

MATCH_BY = ("width", "resolution", "depth")


def matched_models(specs: Sequence[ArchSpec], target: Optional[int], by: str, keep: set[str],
                   log: Log = print) -> list[tuple[str, ArchSpec, Optional[int]]]:
    """(name, spec, target MACs or None) per net; rescaled ones are named NAME@TARGET."""
    from ..counting import analytic_macs
    if target is None:
        return [(s.name, s, None) for s in specs]
    from scaling.single import match_to_macs

    models = []
    for spec in specs:
        if spec.name in keep:
            models.append((spec.name, spec, None))
            continue
        m = match_to_macs(spec, target, by)
        log(f"{spec.name}: {by} x{m.multiplier:g} (per-stage rounding) -> {analytic_macs(m.spec):,} MACs "
            f"({m.error_pct:+.1f} % off the {target:,} target)"
            + ("" if m.matched else f"; no {by} lands within 2 %: unequal cost, no claim"))
        models.append((m.spec.name, m.spec, target))
    return models


def check_names(names: Sequence[str], reference: Optional[str]) -> None:
    """Refuse two specs of one name, a name a --force folder would take, an unknown reference."""
    from ..runfolder.runs import is_rerun_name

    if len(set(names)) != len(names):
        raise NasError(f"two specs share a name ({list(names)}); give them distinct `name:` fields")
    reserved = [n for n in names if is_rerun_name(safe_name(n))]
    if reserved:
        raise NasError(f"a net may not be named {reserved[0]!r}: run-N names the folders of --force "
                       "runs; give it another `name:`")
    if reference is not None and reference not in names:
        raise NasError(f"--reference {reference!r} is not among {', '.join(names)}")


@dataclass
class CompareExperiment:
    """Train `specs` with one recipe over `seeds` into `out`; tabulate with paired intervals.

    Attributes:
        specs: the nets, resolved (their classifiers are fitted to the data in `check`).
        data: the data set request.
        recipe: the one recipe (its seed replaced by each of `seeds`).
        seeds: training seeds, the same for every net.
        out: the output folder (with `force`, OUT/run-N when OUT holds another configuration).
        device: the training device.
        reference: the net every other is compared with (default: the first).
        match_macs: rescale every net but the reference and `as_is` to these MACs (equal cost).
        match_by: the one dimension `match_macs` rescales.
        as_is: names `match_macs` leaves unchanged.
        force: write into OUT/run-N instead of refusing a folder of another configuration.
    """

    specs: Sequence[ArchSpec]
    data: DataRequest
    recipe: Recipe
    seeds: Sequence[int]
    out: Path
    device: str = "auto"
    reference: Optional[str] = None
    match_macs: Optional[int] = None
    match_by: str = "width"
    as_is: Sequence[str] = ()
    force: bool = False
    models: list[tuple[str, ArchSpec, Optional[int]]] = field(default_factory=list, init=False)
    dataset: Any = field(default=None, init=False)

    @property
    def pairs(self) -> list[tuple[str, ArchSpec]]:
        return [(n, s) for n, s, _ in self.models]

    @property
    def reference_name(self) -> str:
        return self.reference or self.specs[0].name

    def check(self, log: Log = print) -> None:
        """Fit the nets to the data, check names, rescale (`match_macs`), refuse twins, and make
        the memory and resolution checks; the data set is decoded at the size the nets need."""
        from ..compare import same_architecture
        from ..preflight import check_before_training, check_nets_data_resolution
        from ..data.fit import fit_to_data

        check_nets_data_resolution(self.data.data_resolution, self.specs)  # before the data is loaded
        dataset = self.data.for_nets(self.specs[:1])  # for the checks; decoded for all nets below
        specs = [fit_to_data(s, dataset, log) for s in self.specs]
        check_names([s.name for s in specs], self.reference)
        keep = {self.reference_name, *self.as_is}
        self.models = matched_models(specs, self.match_macs, self.match_by, keep, log)
        twins = same_architecture(self.pairs)
        if twins:
            raise NasError(f"{twins[0]} and {twins[1]} are one architecture (the same canonical spec): "
                           "training it twice would compare a net with itself; give it once")
        nets = [s for _, s, _ in self.models]
        # after match_macs, which may have grown a net's resolution; before decoding at that size
        check_before_training(nets, dataset, self.recipe, self.device, self.data.data_resolution)
        self.dataset = self.data.for_nets(nets, dataset)

    def run(self, trainer: Optional[Trainer], log: Log = print) -> tuple[Path, Any]:
        """(the folder written into, one row per (net, seed)) under the folder's lock."""
        from ..runfolder.folders import run_folder
        from ..compare import compare, fit_of
        from ..train import Runtime

        with run_folder(Path(self.out), fit_of(self.pairs, self.dataset, self.recipe, self.seeds),
                        self.force) as out:
            runs = compare(self.pairs, self.dataset, self.recipe, out, self.seeds,
                           Runtime(device=self.device, quiet=True), log=log, trainer=trainer)
        return out, runs

    def report(self, result: tuple[Path, Any], log: Log = print) -> Path:
        """runs.csv, compare.csv, compare.md (Holm-adjusted verdicts, costs) and compare.png."""
        from ..atomic import write_csv, write_text
        from ..compare import cost_disagreements, cost_table, markdown, plot, summarise

        out, runs = result
        reference = self.reference_name
        write_csv(out / "runs.csv", runs)
        summary = claims_of(summarise(runs, reference=reference), self.match_macs)
        costs = cost_table(self.pairs, self.device)
        summary = summary.merge(costs, on="model").assign(target_macs=[t for _, _, t in self.models])
        write_csv(out / "compare.csv", summary)
        warnings = cost_disagreements(summary)
        family = (f"each net vs {reference} at {self.match_macs:,} MACs" if self.match_macs else
                  f"each net vs {reference} (not at equal MACs: no --match-macs)")
        table = markdown(summary, family=family) + "\n\n" + cost_markdown(summary)
        write_text(out / "compare.md", f"# {self.dataset.name}, recipe {self.recipe.name}, seeds "
                                        f"{', '.join(map(str, self.seeds))}\n\n{table}\n"
                                        + "".join(f"\n{w}\n" for w in warnings))
        plot(summary, out / "compare.png", f"{self.dataset.name}: recipe {self.recipe.name}")
        log(table)
        for w in warnings:
            log(w)
        return out / "compare.md"


def claims_of(summary, match_macs: Optional[int]):
    """The summary with each net's MACs gap to --match-macs ("unequal cost" beyond 2 %, the
    reference included) and Holm-adjusted verdicts over the comparisons that remain claims."""
    from ..claims import holm_summary, mark_costs
    return holm_summary(mark_costs(summary, match_macs) if match_macs else summary)


def cost_markdown(summary) -> str:
    """Target and realised MACs, params, measured latency and training speed per net."""
    from ..tables import markdown_table

    rows = [[r["model"], "-" if r["target_macs"] is None or r["target_macs"] != r["target_macs"]
             else f"{r['target_macs'] / 1e6:.2f}", f"{r['macs'] / 1e6:.2f}", f"{int(r['params']):,}",
             f"{r['latency_b1_ms']:.2f}", f"{r['latency_b256_ms']:.1f}", f"{r['images_per_s']:,.0f}"]
            for _, r in summary.iterrows()]
    return markdown_table(rows, ["model", "target MACs (M)", "MACs (M)", "params", "latency b1 (ms)",
                                 "latency b256 (ms)", "train img/s"])
