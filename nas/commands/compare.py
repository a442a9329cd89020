"""`nas compare`: train several nets with one recipe and the same seeds; paired verdicts."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import NasError
from ..presets import resolve_spec
from ..recipe import resolve_recipe
from ..study import RunLock
from .common import DATA, dataset_from_args, fit_to_data
from .options import add


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="train several specs with one recipe and seeds; tabulate with "
                                       "paired 95 %% intervals")
    p.add_argument("specs", nargs="+", metavar="SPEC_OR_PRESET", help="spec YAML files or preset names")
    add(p, *DATA, "recipe", "seeds", "device", "out")
    p.add_argument("--reference", help="the net every other is compared with (default: the first)")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from ..compare import compare, markdown, plot, summarise
    from ..train import Runtime

    specs = [resolve_spec(s) for s in args.specs]
    dataset = dataset_from_args(args, resolution=specs[0].resolution)
    specs = [fit_to_data(s, dataset) for s in specs]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise NasError(f"two specs share a name ({names}); give them distinct `name:` fields")
    if args.reference is not None and args.reference not in names:
        raise NasError(f"--reference {args.reference!r} is not among {', '.join(names)}")
    recipe = resolve_recipe(args.recipe)
    out = Path(args.out)
    with RunLock(out):
        runs = compare(list(zip(names, specs)), dataset, recipe, out, args.seeds,
                       Runtime(device=args.device, quiet=True))
    runs.to_csv(out / "runs.csv", index=False)
    summary = summarise(runs, reference=args.reference)
    summary.to_csv(out / "compare.csv", index=False)
    table = markdown(summary)
    (out / "compare.md").write_text(f"# {dataset.name}, recipe {recipe.name}, seeds "
                                    f"{', '.join(map(str, args.seeds))}\n\n{table}\n")
    plot(summary, out / "compare.png", f"{dataset.name}: recipe {recipe.name}")
    print(table)
    return 0
