"""`nas compare`: train several nets with one recipe and the same seeds; paired verdicts, and
optionally every reference rescaled to the same MACs first (`--match-macs`)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ..atomic import write_csv, write_text
from ..errors import NasError
from ..paths import safe_name
from ..presets import resolve_spec
from ..recipe import resolve_recipe
from ..spec import ArchSpec
from ..train.runfolder import is_rerun_name
from .common import DATA, dataset_for_nets, fit_to_data, run_folder
from .options import MACS, add


def register(sub: argparse._SubParsersAction) -> None:
    """Add `nas compare`."""
    p = sub.add_parser("compare", help="train several specs with one recipe and seeds; tabulate with "
                                       "paired 95 %% intervals")
    p.add_argument("specs", nargs="+", metavar="SPEC_OR_PRESET", help="spec YAML files or preset names")
    add(p, *DATA, "recipe", "seeds", "device", "out", "force")
    p.add_argument("--reference", help="the net every other is compared with (default: the first)")
    p.add_argument("--match-macs", type=MACS,
                   help="rescale every net except the reference (and --as-is ones) to land nearest "
                        "these MACs, e.g. 1.5M: an equal-cost comparison")
    p.add_argument("--match-by", choices=("width", "resolution", "depth"), default="width",
                   help="the one dimension --match-macs rescales (default width)")
    p.add_argument("--as-is", default="", help="comma-separated names that --match-macs leaves unchanged")
    p.set_defaults(func=cmd_compare)


def matched_models(specs: list[ArchSpec], target: Optional[int], by: str, keep: set[str],
                   log=print) -> list[tuple[str, ArchSpec, Optional[int]]]:
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


def cmd_compare(args: argparse.Namespace) -> int:
    """Run `nas compare`."""
    from ..compare import (compare, cost_disagreements, cost_table, fit_of, markdown, plot, same_architecture,
                           summarise)
    from ..preflight import check_before_training, check_nets_data_resolution
    from ..train import Runtime

    specs = [resolve_spec(s) for s in args.specs]
    check_nets_data_resolution(args.data_resolution, specs)  # before the data is loaded
    dataset = dataset_for_nets(args, specs[:1])  # for the checks; decoded for all nets below
    specs = [fit_to_data(s, dataset) for s in specs]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise NasError(f"two specs share a name ({names}); give them distinct `name:` fields")
    reserved = [n for n in names if is_rerun_name(safe_name(n))]
    if reserved:
        raise NasError(f"a net may not be named {reserved[0]!r}: run-N names the folders of --force "
                       "runs; give it another `name:`")
    if args.reference is not None and args.reference not in names:
        raise NasError(f"--reference {args.reference!r} is not among {', '.join(names)}")
    reference = args.reference or names[0]
    keep = {reference, *(n.strip() for n in args.as_is.split(",") if n.strip())}
    models = matched_models(specs, args.match_macs, args.match_by, keep)
    twins = same_architecture([(n, s) for n, s, _ in models])
    if twins:
        raise NasError(f"{twins[0]} and {twins[1]} are one architecture (the same canonical spec): "
                       "training it twice would compare a net with itself; give it once")
    recipe = resolve_recipe(args.recipe)
    # after --match-macs, which may have grown a net's resolution; before decoding at that size
    check_before_training([s for _, s, _ in models], dataset, recipe, args.device,
                          args.data_resolution)
    dataset = dataset_for_nets(args, [s for _, s, _ in models], dataset)
    pairs = [(n, s) for n, s, _ in models]
    with run_folder(Path(args.out), fit_of(pairs, dataset, recipe, args.seeds), args.force) as out:
        runs = compare(pairs, dataset, recipe, out, args.seeds, Runtime(device=args.device, quiet=True))
    write_csv(out / "runs.csv", runs)
    summary = claims_of(summarise(runs, reference=reference), args.match_macs)
    costs = cost_table(pairs, args.device)
    summary = summary.merge(costs, on="model").assign(target_macs=[t for _, _, t in models])
    write_csv(out / "compare.csv", summary)
    warnings = cost_disagreements(summary)
    family = (f"each net vs {reference} at {args.match_macs:,} MACs" if args.match_macs else
              f"each net vs {reference} (not at equal MACs: no --match-macs)")
    table = markdown(summary, family=family) + "\n\n" + cost_markdown(summary)
    write_text(out / "compare.md", f"# {dataset.name}, recipe {recipe.name}, seeds "
                                    f"{', '.join(map(str, args.seeds))}\n\n{table}\n"
                                    + "".join(f"\n{w}\n" for w in warnings))
    plot(summary, out / "compare.png", f"{dataset.name}: recipe {recipe.name}")
    print(table)
    for w in warnings:
        print(w)
    return 0


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
