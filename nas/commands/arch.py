"""`nas flops` and `nas show`: count and describe a spec or preset."""
from __future__ import annotations

import argparse
import json
import math

from ..builder import build
from ..errors import NasError
from ..counting import analytic_count
from ..model_counting import count_params, fvcore_macs
from ..presets import resolve_spec
from ..spec import ArchSpec
from ..tables import human, text_table


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `flops` and `show` sub-commands."""
    p = sub.add_parser("flops", help="parameters and MACs (the paper's FLOPs) of a spec or preset")
    p.add_argument("spec", metavar="SPEC_OR_PRESET", help="a spec YAML file or a preset name")
    p.add_argument("--resolution", type=int, help="input size in pixels (default: the spec's)")
    p.add_argument("--num-classes", type=int, help="classifier width (default: the spec's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-fvcore", action="store_true", help="skip the (slower) fvcore trace")
    p.set_defaults(func=cmd_flops)

    p = sub.add_parser("show", help="stage table and one-line stage strings of a spec or preset")
    p.add_argument("spec", metavar="SPEC_OR_PRESET", help="a spec YAML file or a preset name")
    p.set_defaults(func=cmd_show)


def _with_overrides(args: argparse.Namespace) -> ArchSpec:
    spec = resolve_spec(args.spec)
    changes = {}
    if args.resolution is not None:
        changes["resolution"] = args.resolution
    if args.num_classes is not None:
        changes["num_classes"] = args.num_classes
    return spec.replace(**changes) if changes else spec


def flops_report(spec: ArchSpec, with_fvcore: bool = True) -> dict:
    """Parameters and MACs of `spec`, analytic and (optionally) traced by fvcore.

    Args:
        spec: the architecture.
        with_fvcore: also build the model, count its parameters and trace its MACs with
            fvcore (slower); without it macs_fvcore is None.

    Returns:
        dict with name, resolution, num_classes, blocks, params, macs, conv_macs, fc_macs,
        elementwise_ops and macs_fvcore.
    """
    count = analytic_count(spec)
    report = {
        "name": spec.name, "resolution": spec.resolution, "num_classes": spec.num_classes,
        "blocks": spec.blocks, "params": count.params, "macs": count.macs,
        "conv_macs": count.conv_macs, "fc_macs": count.fc_macs,
        "elementwise_ops": count.elementwise_ops, "macs_fvcore": None,
    }
    if with_fvcore and not _fits_in_memory(spec, count.params):
        report["note"] = ("fvcore trace skipped: the model's weights and one image's activations exceed "
                          "the available memory; the analytic count is exact")
        with_fvcore = False
    if with_fvcore:
        model = _build_or_refuse(spec)
        report["params"] = count_params(model)
        try:
            report["macs_fvcore"] = fvcore_macs(model, spec.resolution, spec.in_channels)
        except (MemoryError, RuntimeError) as exc:  # the estimate was short: still one line
            raise NasError(f"cannot trace {spec.name} at {spec.resolution} px with fvcore "
                           f"({str(exc).splitlines()[0][:160]}); use --no-fvcore for the analytic "
                           "count") from None
    return report


def _fits_in_memory(spec: ArchSpec, params: int) -> bool:
    """Whether tracing one image fits: two copies of the weights and every conv output of the
    image (the trace keeps them), against the machine's available memory."""
    import torch

    from ..train.memory import BYTES, activation_elements, available_bytes

    free = available_bytes(torch.device("cpu"))
    return free is None or (params * 2 + activation_elements(spec)) * BYTES < free


def _build_or_refuse(spec: ArchSpec):
    try:
        return build(spec)
    except (MemoryError, RuntimeError) as exc:  # torch's CPU allocator raises RuntimeError
        raise NasError(f"cannot build {spec.name} to trace it: {str(exc).splitlines()[0][:200]}; "
                       "use --no-fvcore for the analytic count") from None


def cmd_flops(args: argparse.Namespace) -> int:
    """`nas flops`: print (or --json) the parameters and MACs of a spec or preset."""
    report = flops_report(_with_overrides(args), with_fvcore=not args.no_fvcore)
    if args.json:
        print(json.dumps(report))
        return 0
    fv = report["macs_fvcore"]
    print(f"{report['name']} at {report['resolution']} px, {report['num_classes']} classes, "
          f"{report['blocks']} blocks")
    print(f"  params           {report['params']:,}")
    print(f"  MACs (analytic)  {report['macs']:,}  ({human(report['macs'])}; multiply-adds of "
          "conv + FC = the paper's \"FLOPs\", BatchNorm excluded)")
    if fv is not None:
        print(f"  MACs (fvcore)    {fv:,}  (analytic/fvcore = {report['macs'] / fv:.4f})")
    if report.get("note"):
        print(f"  note: {report['note']}")
    print(f"  elementwise ops  {report['elementwise_ops']:,}  (activations, SE pool/gate, "
          "residual adds, pooling; not in MACs)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """`nas show`: print a spec's stem, stage table with output sizes, head and counts."""
    spec = resolve_spec(args.spec)
    hw = math.ceil(spec.resolution / spec.stem.stride)
    if spec.stem.pool:
        hw = math.ceil(hw / 2)
    print(f"{spec.name}: {spec.resolution} px, {spec.num_classes} classes, activation "
          f"{spec.activation}, dropout {spec.dropout}, stochastic depth {spec.drop_path}, "
          f"BN eps {spec.bn.eps} momentum {spec.bn.momentum}")
    print(f"stem: conv{spec.stem.kernel}x{spec.stem.kernel}/{spec.stem.stride} -> "
          f"{spec.stem.channels} ch{' + max-pool 3x3/2' if spec.stem.pool else ''}")
    rows = []
    for i, s in enumerate(spec.stages, 1):
        hw = math.ceil(hw / s.stride)
        rows.append([i, s.block, s.repeats, s.kernel, s.stride, s.expand, s.out, s.se,
                     "yes" if s.skip else "no", f"{hw}x{hw}", s.to_string()])
    print(text_table(rows, ["stage", "block", "repeats", "kernel", "stride", "expand", "out",
                            "se", "skip", "output", "string"]))
    head = f"conv1x1 -> {spec.head.channels} ch, " if spec.head.channels else ""
    print(f"head: {head}global pool, dropout {spec.dropout}, FC -> {spec.num_classes}")
    count = analytic_count(spec)
    print(f"{spec.blocks} blocks, {count.params:,} params, {human(count.macs)} MACs")
    return 0
