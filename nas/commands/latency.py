"""`nas latency table` and `nas latency check`: a per-block latency lookup table for a space,
and its accuracy (and that of MACs) against measured latency."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import NasError
from .options import NON_NEGATIVE_INT, POSITIVE_INT


def register(sub: argparse._SubParsersAction) -> None:
    """Add `nas latency table` and `nas latency check`."""
    p = sub.add_parser("latency", help="latency lookup tables: build one for a space, check its predictions")
    steps = p.add_subparsers(dest="latency_command", required=True, metavar="STEP")
    t = steps.add_parser("table", help="time every distinct block (and stem, head) a space can produce")
    t.add_argument("--space", required=True, help="search space: tiny, cifar16, ... or a YAML file")
    t.add_argument("--out", required=True, help="the table's JSON file (refused if it exists)")
    t.add_argument("--classes", type=POSITIVE_INT, default=10, help="classifier width (default 10)")
    t.add_argument("--repeats", type=POSITIVE_INT, default=20, help="timed passes per entry (default 20)")
    t.add_argument("--max-entries", type=POSITIVE_INT, default=20_000,
                   help="refuse a space with more distinct pieces than this, before timing (default 20000)")
    t.add_argument("--stat", choices=("median", "min"), default="median",
                   help="one number from the repeats: median, or min (robust when other jobs share the "
                        "cores); `nas latency check` measures nets the same way (default median)")
    _device_options(t)
    t.set_defaults(func=cmd_table)
    c = steps.add_parser("check", help="predicted vs measured latency (and MACs as a predictor) on "
                                       "random candidates")
    c.add_argument("table", help="a table from `nas latency table`")
    c.add_argument("--space", required=True, help="the space to sample candidates from")
    c.add_argument("--samples", type=POSITIVE_INT, default=100, help="random candidates (default 100)")
    c.add_argument("--calibrate", type=NON_NEGATIVE_INT, default=10,
                   help="nets the overhead c0 + c1*blocks is fitted on, scored on the others (default 10)")
    c.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="sampling seed (default 0)")
    c.add_argument("--out", help="folder for check.md, check.csv and check.png (default: print only)")
    _device_options(c)
    c.set_defaults(func=cmd_check)


def _device_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device to time on (default cpu)")
    p.add_argument("--batch", type=POSITIVE_INT, default=1, help="images per pass (default 1)")
    p.add_argument("--threads", type=POSITIVE_INT,
                   help="torch CPU threads (default: torch's, all cores); part of the device fingerprint")


def _device(args: argparse.Namespace):
    import torch

    from ..train.runtime import resolve_device
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    return device


def cmd_table(args: argparse.Namespace) -> int:
    """Build and write a lookup table."""
    from ..latency_table import build_table
    from ..search.space import load_space
    out = Path(args.out)
    if out.exists():
        raise NasError(f"{out} exists; choose another --out (or delete it to rebuild the table)")
    space, device = load_space(args.space), _device(args)
    start = time.perf_counter()
    table = build_table(space, device, args.batch, args.classes, args.repeats, args.stat, args.max_entries)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.save(out)
    print(f"wrote {out}: {len(table.entries)} entries in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Measure random candidates and print (and write) the predictors' agreement."""
    from ..latency import device_fingerprint, fingerprint_id
    from ..latency_check import check_table, report_markdown, write_check
    from ..latency_table import LatencyTable
    from ..search.space import load_space
    space, device = load_space(args.space), _device(args)
    table = LatencyTable.load(Path(args.table), args.device)
    if table.batch != args.batch:
        raise NasError(f"{args.table} was timed at batch {table.batch}; check it with --batch {table.batch}")
    df, summary = check_table(table, space, args.samples, device, args.seed, args.calibrate)
    header = (f"Latency check of `{args.table}` (space `{space.name}`) on "
              f"{fingerprint_id(device_fingerprint(device))}, batch {args.batch}, {table.stat} of repeats, {len(df)} random candidates (seed {args.seed}), "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    print(header)
    print(report_markdown(summary))
    if args.out:
        write_check(Path(args.out), df, summary, header)
        print(f"wrote {args.out}/check.md, check.csv, check.png")
    return 0
