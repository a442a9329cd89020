"""`nas scale grid|emit|single`: compound-scaling coefficients, emission, single dimensions."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..runfolder.outputs import write_files
from ..paths import safe_name
from ..presets import resolve_spec
from ..tables import text_table
from ..experiments import execute
from ..settings import DataRequest
from .common import DATA
from .options import SEED_COUNT, add, config_from

GRID = ("base", "dataset", "data_dir", "val_fraction", "download", "step", "tolerance", "nominal_window",
        "closest", "alpha_max", "beta_max", "gamma_max", "recipe", "seed", "storage", "study_name",
        "heartbeat", "workers", "device", "resolution_multiple", "timeout", "out", "grid_seeds")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `nas scale grid|emit|single|study`."""
    scale = sub.add_parser("scale", help="compound scaling: grid search, emission, single-dimension")
    ssub = scale.add_subparsers(dest="scale_command", required=True, metavar="STEP")

    p = ssub.add_parser("grid", help="grid-search alpha, beta, gamma at phi = 1 at equal realised MACs")
    add(p, *GRID)
    p.add_argument("--seeds", dest="grid_seeds", type=SEED_COUNT, default=1,
                   help="the old name of --grid-seeds (a count here, not a list)")
    p.set_defaults(func=cmd_grid)

    p = ssub.add_parser("emit", help="emit scaled specs for a list of phi")
    add(p, "base")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--coefficients", help="alpha,beta,gamma, e.g. 1.2,1.1,1.15")
    src.add_argument("--from", dest="from_file", help="a grid's best_coefficients.yaml")
    src.add_argument("--paper", action="store_true", help="the released B1-B7 table (EfficientNet bases)")
    add(p, "phi", "resolution_multiple", "out")
    p.add_argument("--tolerance", type=float, default=0.1,
                   help="with --strict: allowed |alpha*beta^2*gamma^2 - 2| (default 0.1)")
    p.add_argument("--strict", action="store_true", help="refuse alpha*beta^2*gamma^2 outside 2 +- tolerance")
    p.set_defaults(func=cmd_emit)

    p = ssub.add_parser("single", help="scale one dimension to MACs targets (Figure 3 / Table 3)")
    add(p, "base")
    p.add_argument("--dimension", required=True, choices=("depth", "width", "resolution"),
                   help="the one dimension to grow")
    p.add_argument("--targets", required=True, help="MACs ratios to the base, e.g. 2x,4x,0.5x")
    add(p, "out")
    p.set_defaults(func=cmd_single)

    p = ssub.add_parser("study", help="compound vs depth-, width-, resolution-only at equal realised MACs, "
                                      "trained with seeds (Figure 3 / Table 3 on your data)")
    add(p, "base")
    p.add_argument("--targets", default="2x", help="MACs ratios to the base, e.g. 2x,4x (default 2x)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--coefficients", help="alpha,beta,gamma (default: the paper's 1.2,1.1,1.15)")
    src.add_argument("--from", dest="from_file", help="a grid's best_coefficients.yaml")
    add(p, *DATA, "recipe", "seeds", "resolution_multiple", "device", "out", "force")
    p.set_defaults(func=cmd_study)


def cmd_grid(args: argparse.Namespace) -> int:
    """Run `nas scale grid`."""
    from scaling.experiments import GridExperiment
    from scaling.grid import GridConfig

    experiment = GridExperiment(config_from(GridConfig, args, seeds=args.grid_seeds))
    execute(experiment)
    return 0 if experiment.chosen is not None else 1


def cmd_emit(args: argparse.Namespace) -> int:
    """Run `nas scale emit`."""
    from scaling import Coefficients, emit_compound, emit_paper, parse_phis
    from scaling.emit import huge_warnings, miss_warnings, write_emission

    base = resolve_spec(args.base)
    phis = parse_phis(args.phi)
    if args.paper:
        models, factor = emit_paper(base, phis), 1.2 * 1.1 ** 2 * 1.15 ** 2
    else:
        c = Coefficients.parse(args.coefficients) if args.coefficients else Coefficients.load(args.from_file)
        c.check(args.tolerance, args.strict)
        models, factor = emit_compound(base, c, phis, args.resolution_multiple), c.factor
    table = write_emission(Path(args.out), base, models, factor)
    cols = ["name", "phi", "depth", "width", "resolution", "dropout", "macs", "params", "realised_ratio",
            "formula_ratio", "ideal_ratio"]
    print(text_table(table[cols].values.tolist(), cols))
    for line in miss_warnings(table) + huge_warnings(base, table):
        print(line, file=sys.stderr)
    print(f"wrote {len(models)} spec(s) and scaled.csv to {args.out}")
    return 0


def cmd_single(args: argparse.Namespace) -> int:
    """Run `nas scale single`."""
    import pandas as pd

    from scaling.single import parse_targets, scale_single

    results = scale_single(resolve_spec(args.base), args.dimension, parse_targets(args.targets))
    out = Path(args.out)
    rows, files = [], {}
    for r in results:
        files[f"{safe_name(r.spec.name)}.yaml"] = r.spec.to_yaml()
        rows.append([r.spec.name, f"{r.target_ratio:g}x", r.multiplier, round(r.realised_ratio, 4),
                     f"{r.error_pct:+.2f}%", "yes" if r.matched else "no: unequal cost", round(r.below, 4),
                     round(r.above, 4)])
    header = ["name", "target", "multiplier", "realised", "error", "within 2 %", "nearest below", "nearest above"]
    files["single.csv"] = pd.DataFrame(rows, columns=header).to_csv(index=False)
    write_files(out, files, "single-dimension scaling")
    print(text_table(rows, header))
    print(f"wrote {len(rows)} spec(s) and single.csv to {out}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    """Run `nas scale study`."""
    from scaling import Coefficients
    from scaling.experiments import ScalingStudyExperiment
    from scaling.single import parse_targets

    from ..recipe import resolve_recipe

    c = (Coefficients.load(args.from_file) if args.from_file
         else Coefficients.parse(args.coefficients or "1.2,1.1,1.15"))
    execute(ScalingStudyExperiment(
        base=resolve_spec(args.base), coefficients=c, targets=parse_targets(args.targets),
        data=DataRequest.from_args(args), recipe=resolve_recipe(args.recipe), seeds=args.seeds,
        out=Path(args.out), device=args.device, resolution_multiple=args.resolution_multiple, force=args.force))
    return 0
