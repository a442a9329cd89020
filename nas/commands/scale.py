"""`nas scale grid|emit|single`, `nas pipeline` and `nas compare`."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..presets import resolve_spec
from ..recipe import resolve_recipe
from ..search.objectives import MODES, parse_macs
from ..search.engine import SAMPLERS
from ..tables import text_table
from .common import add_data_args, dataset_from_args


def register(sub: argparse._SubParsersAction) -> None:
    scale = sub.add_parser("scale", help="compound scaling: grid search, emission, single-dimension")
    ssub = scale.add_subparsers(dest="scale_command", required=True, metavar="STEP")

    p = ssub.add_parser("grid", help="grid-search alpha, beta, gamma at phi = 1 (resumable)")
    p.add_argument("--base", required=True, help="base spec YAML or preset (e.g. a search's best.yaml)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--step", type=float, default=0.05)
    p.add_argument("--tolerance", type=float, default=0.1, help="|alpha*beta^2*gamma^2 - 2| allowed")
    p.add_argument("--closest", type=int, help="only the K points closest to 2")
    p.add_argument("--alpha-max", type=float, default=2.0)
    p.add_argument("--beta-max", type=float, default=1.5)
    p.add_argument("--gamma-max", type=float, default=1.5)
    p.add_argument("--recipe", default="proxy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resolution-multiple", type=int, default=8,
                   help="round scaled resolutions to this many pixels (default 8, as the paper)")
    p.add_argument("--storage", help="Optuna storage URL or journal file (default: DIR/study.journal)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--timeout", type=float,
                   help="start no new point after this many seconds; re-run to go on")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_grid)

    p = ssub.add_parser("emit", help="emit scaled specs for a list of phi")
    p.add_argument("--base", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--coefficients", help="alpha,beta,gamma, e.g. 1.2,1.1,1.15")
    src.add_argument("--from", dest="from_file", help="a grid's best_coefficients.yaml")
    src.add_argument("--paper", action="store_true", help="the released B1-B7 table (EfficientNet bases)")
    p.add_argument("--phi", default="1..7", help="e.g. 1..7, 1,2,3 or -1,0.5 (default 1..7)")
    p.add_argument("--tolerance", type=float, default=0.1)
    p.add_argument("--strict", action="store_true", help="refuse alpha*beta^2*gamma^2 outside 2 +- tolerance")
    p.add_argument("--resolution-multiple", type=int, default=8,
                   help="round scaled resolutions to this many pixels (default 8, as the paper)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_emit)

    p = ssub.add_parser("single", help="scale one dimension to MACs targets (Figure 3 / Table 3)")
    p.add_argument("--base", required=True)
    p.add_argument("--dimension", required=True, choices=("depth", "width", "resolution"))
    p.add_argument("--targets", required=True, help="MACs ratios, e.g. 2x,4x,0.5x")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_single)

    p = sub.add_parser("pipeline", help="search -> grid -> emission -> training -> report, resumable")
    p.add_argument("--space", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir")
    p.add_argument("--target-macs", required=True, type=parse_macs)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--phi", default="1,2,3")
    p.add_argument("--objective", choices=MODES, default="reward")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recipe", default="proxy")
    p.add_argument("--grid-step", type=float, default=0.05)
    p.add_argument("--grid-tolerance", type=float, default=0.1)
    p.add_argument("--grid-closest", type=int, default=6, help="grid points nearest 2 to train (0 = all)")
    p.add_argument("--resolution-multiple", type=int, default=8,
                   help="round scaled resolutions to this many pixels (default 8, as the paper)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("compare", help="train several specs with one recipe and seeds; tabulate")
    p.add_argument("specs", nargs="+", metavar="SPEC_OR_PRESET")
    add_data_args(p)
    p.add_argument("--recipe", default="proxy")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_compare)


def cmd_grid(args: argparse.Namespace) -> int:
    from scaling.grid import GridConfig, run_grid, write_grid_outputs

    config = GridConfig(base=args.base, dataset=args.dataset, out=args.out, step=args.step,
                        tolerance=args.tolerance, closest=args.closest, alpha_max=args.alpha_max,
                        beta_max=args.beta_max, gamma_max=args.gamma_max, recipe=args.recipe,
                        seed=args.seed, storage=args.storage, workers=args.workers, device=args.device,
                        data_dir=args.data_dir, resolution_multiple=args.resolution_multiple,
                        timeout=args.timeout, val_fraction=args.val_fraction)
    chosen = write_grid_outputs(run_grid(config), config)
    if chosen is None:
        print("no grid point finished; nothing chosen")
        return 1
    print(f"best: alpha {chosen['alpha']} beta {chosen['beta']} gamma {chosen['gamma']} "
          f"(alpha*beta^2*gamma^2 = {chosen['factor']}, realised MACs ratio {chosen['realised_ratio']}, "
          f"val {chosen['val_acc'] * 100:.2f}%) -> {args.out}/best_coefficients.yaml, grid.csv, grid.png")
    return 0


def cmd_emit(args: argparse.Namespace) -> int:
    from scaling import Coefficients, emit_compound, emit_paper, parse_phis
    from scaling.emit import write_emission

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
    print(f"wrote {len(models)} spec(s) and scaled.csv to {args.out}")
    return 0


def cmd_single(args: argparse.Namespace) -> int:
    from scaling.single import parse_targets, scale_single

    results = scale_single(resolve_spec(args.base), args.dimension, parse_targets(args.targets))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in results:
        r.spec.save(out / f"{r.spec.name}.yaml")
        rows.append([r.spec.name, f"{r.target_ratio:g}x", r.multiplier, round(r.realised_ratio, 4),
                     f"{r.error_pct:+.2f}%", round(r.below, 4), round(r.above, 4)])
    header = ["name", "target", "multiplier", "realised", "error", "nearest below", "nearest above"]
    print(text_table(rows, header))
    import pandas as pd
    pd.DataFrame(rows, columns=header).to_csv(out / "single.csv", index=False)
    print(f"wrote {len(rows)} spec(s) and single.csv to {out}")
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from scaling import parse_phis
    from scaling.pipeline import Pipeline, PipelineConfig

    config = PipelineConfig(space=args.space, dataset=args.dataset, target_macs=args.target_macs,
                            out=args.out, trials=args.trials, phis=tuple(parse_phis(args.phi)),
                            objective=args.objective, sampler=args.sampler, seed=args.seed,
                            recipe=args.recipe, grid_step=args.grid_step, grid_tolerance=args.grid_tolerance,
                            grid_closest=args.grid_closest or None,
                            resolution_multiple=args.resolution_multiple, device=args.device,
                            data_dir=args.data_dir, workers=args.workers)
    report = Pipeline(config).run()
    print(report.read_text())
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..compare import compare, markdown, plot, summarise
    from ..train import Runtime

    specs = [resolve_spec(s) for s in args.specs]
    dataset = dataset_from_args(args, resolution=specs[0].resolution)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    recipe = resolve_recipe(args.recipe)
    out = Path(args.out)
    runs = compare([(s.name, s) for s in specs], dataset, recipe, out, seeds,
                   Runtime(device=args.device, quiet=True))
    runs.to_csv(out / "runs.csv", index=False)
    summary = summarise(runs)
    summary.to_csv(out / "compare.csv", index=False)
    table = markdown(summary)
    (out / "compare.md").write_text(f"# {dataset.name}, recipe {recipe.name}, seeds {seeds}\n\n{table}\n")
    plot(summary, out / "compare.png", f"{dataset.name}: recipe {recipe.name}")
    print(table)
    return 0
