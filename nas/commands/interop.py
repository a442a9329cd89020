"""`nas convert` and `nas export`: weights in from torchvision/timm, and out again."""
from __future__ import annotations

import argparse

from ..interop.check import TOLERANCE
from ..interop.export import FORMATS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `convert` and `export` sub-commands."""
    p = sub.add_parser("convert", help="import torchvision/timm weights onto the matching preset")
    p.add_argument("weights", metavar="WEIGHTS", help=".pt/.pth state_dict file")
    p.add_argument("--from", dest="source", required=True, metavar="ZOO:NAME",
                   help="torchvision:NAME or timm:NAME, e.g. torchvision:efficientnet_b0")
    p.add_argument("--spec", help="preset or spec YAML to map onto (default: the source's preset)")
    p.add_argument("--out", required=True, help="run folder to create (spec.yaml, checkpoint.pt)")
    p.add_argument("--check-resolution", type=int,
                   help="input size of the output check (default: the spec's resolution)")
    p.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help=f"largest max abs output difference accepted (default {TOLERANCE:g})")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="export a run to ONNX, TorchScript or torchvision weights")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT", help="a run folder or its checkpoint.pt")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="onnx (dynamic batch, checked in onnxruntime), torchscript, or a torchvision state_dict")
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help=f"largest max abs output difference accepted (default {TOLERANCE:g})")
    p.set_defaults(func=cmd_export)


def cmd_convert(args: argparse.Namespace) -> int:
    """`nas convert`: map torchvision/timm weights onto a preset, check outputs, write a run folder."""
    from ..interop.convert import convert

    convert(args.weights, args.source, args.out, spec=args.spec,
            check_resolution=args.check_resolution, tolerance=args.tolerance)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """`nas export`: write a run's net as ONNX, TorchScript or torchvision weights, checked."""
    from ..interop.export import export

    export(args.checkpoint, args.format, args.out, tolerance=args.tolerance)
    return 0
