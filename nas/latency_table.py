"""Predicted latency: a per-block lookup table measured once on a device (FBNet, ProxylessNAS).

A network is its stem, its blocks (each at its own input size and channels) and its head
(1x1 conv, pooling, classifier). `spec_ops` lists those pieces for one spec; `space_ops`
every distinct piece a search space can produce. `build_table` times each piece once as an
isolated module at its input shape; a prediction is the sum of the spec's entries.
"""
from __future__ import annotations

import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch
from torch import nn

from .blocks import ConvBNAct
from .builder import block_configs
from .errors import NasError
from .latency import WARMUP, as_timed, device_fingerprint, fingerprint_id, time_forward_ms
from .progress import fmt_seconds
from .registry import BuildContext, get_block, out_size
from .rounding import round_width
from .search.space import SearchSpace
from .spec import ArchSpec, BatchNormSpec, StageSpec, StemSpec

TABLE_REPEATS = 20  # per entry; isolated blocks take 0.02-0.5 ms at batch 1 and 16 px
MAX_ENTRIES = 20_000  # ~10 ms per entry at 16 px on one core: cifar16's 824 take ~10 s


@dataclass(frozen=True)
class Op:
    """One timed piece of a network: the stem, one block at its input, or the head.

    Attributes:
        kind: stem, block or head.
        cin: input channels.
        hw: input side in pixels.
        activation: the net's activation.
        stem: the stem (stem only).
        stage: the block as a one-repeat stage with its own stride and output width; `skip`
            is true only where the identity is really added (blocks only).
        head: the head's 1x1 conv width, 0 for none (head only).
        classes: the classifier's width (head only).
    """

    kind: str
    cin: int
    hw: int
    activation: str
    stem: Optional[StemSpec] = None
    stage: Optional[StageSpec] = None
    head: int = 0
    classes: int = 0

    @property
    def key(self) -> str:
        """The table key, e.g. 'block mbconv_r1_k3_s2_e6_c24_se0.25 in16 hw16 silu'."""
        if self.kind == "stem":
            s = self.stem
            what = f"c{s.channels}_k{s.kernel}_s{s.stride}{'_pool' if s.pool else ''}"
        elif self.kind == "block":
            what = self.stage.to_string()
        else:
            what = f"c{self.head}_cls{self.classes}"
        return f"{self.kind} {what} in{self.cin} hw{self.hw} {self.activation}"

    def module(self) -> nn.Module:
        """The piece as a module (BatchNorm's settings do not change eval-mode time)."""
        bn = BatchNormSpec()
        if self.kind == "stem":
            conv = ConvBNAct(self.cin, self.stem.channels, self.stem.kernel, self.stem.stride, bn,
                             self.activation)
            return nn.Sequential(conv, nn.MaxPool2d(3, 2, 1)) if self.stem.pool else conv
        if self.kind == "block":
            context = BuildContext(activation=self.activation, bn=bn, drop_path=0.0)
            return get_block(self.stage.block).build(self.stage, self.cin, self.stage.out,
                                                     self.stage.stride, context)
        return HeadOp(self.cin, self.head, self.classes, self.activation)


class HeadOp(nn.Module):
    """The net's head as one module: [1x1 conv] -> global average pool -> linear (as Net.forward)."""

    def __init__(self, cin: int, head: int, classes: int, activation: str) -> None:
        super().__init__()
        self.conv = ConvBNAct(cin, head, 1, 1, BatchNormSpec(), activation) if head else nn.Identity()
        self.classifier = nn.Linear(head or cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the last feature map."""
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.conv(x), 1), 1))


def block_op(stage: StageSpec, cin: int, stride: int, hw: int, activation: str) -> Op:
    """One block as an Op: canonical type (ds is mbconv e1), one repeat, and the identity
    recorded only where it is added (stride 1 and cin == out)."""
    skip = stage.skip and stride == 1 and cin == stage.out
    one = StageSpec(stage.canonical().block, 1, stage.kernel, stride, stage.out, stage.expand, stage.se, skip)
    return Op("block", cin, hw, activation, stage=one)


def _stem_op(frame: ArchSpec) -> Op:
    return Op("stem", frame.in_channels, frame.resolution, frame.activation, stem=frame.stem)


def _after_stem(frame: ArchSpec) -> int:
    hw = out_size(frame.resolution, frame.stem.stride)
    return out_size(hw, 2) if frame.stem.pool else hw


def spec_ops(spec: ArchSpec) -> list[Op]:
    """The pieces of one network, in order: stem, every block, head."""
    ops, hw = [_stem_op(spec)], _after_stem(spec)
    for _, stage, cin, _, stride in block_configs(spec):
        ops.append(block_op(stage, cin, stride, hw, spec.activation))
        hw = out_size(hw, stride)
    ops.append(Op("head", spec.stages[-1].out, hw, spec.activation, head=spec.head.channels,
                  classes=spec.num_classes))
    return ops


def _stage_ops(space: SearchSpace, index: int, inputs: set[int], hw: int) -> Iterator[Op]:
    """Every distinct block stage `index` can hold, for each possible input width: its first
    block (stride, width change) and, when it may repeat, the repeated block."""
    st, act = space.stages[index], space.base.activation
    repeats = max(space.min_repeats, st.repeats + max(st.repeats_delta)) > 1
    for (block, expand), kernel, se, skip, out in itertools.product(
            st.block_variants(), st.kernel, st.se, st.skip, sorted(stage_widths(space, index))):
        stage = StageSpec(block, 1, kernel, st.stride, out, expand, se, skip)
        for cin in sorted(inputs):
            yield block_op(stage, cin, st.stride, hw, act)
        if repeats:
            yield block_op(stage, out, 1, out_size(hw, st.stride), act)


def stage_widths(space: SearchSpace, index: int) -> set[int]:
    """The output widths stage `index` can have (its width multipliers, rounded)."""
    st = space.stages[index]
    return {round_width(st.out, w) for w in st.width}


def space_ops(space: SearchSpace, classes: int) -> list[Op]:
    """Every distinct piece (by key) that a candidate of `space` with `classes` outputs can hold."""
    frame = space.base
    ops = {_stem_op(frame).key: _stem_op(frame)}
    inputs, hw = {frame.stem.channels}, _after_stem(frame)
    for index, st in enumerate(space.stages):
        for op in _stage_ops(space, index, inputs, hw):
            ops.setdefault(op.key, op)
        inputs, hw = stage_widths(space, index), out_size(hw, st.stride)
    for cin in sorted(inputs):
        op = Op("head", cin, hw, frame.activation, head=frame.head.channels, classes=classes)
        ops[op.key] = op
    return list(ops.values())


class TableError(NasError):
    """A latency table is missing, unreadable, or lacks a network's piece."""


@dataclass(frozen=True)
class LatencyTable:
    """Measured milliseconds per piece (Op key) on one device, and how they were measured.

    Attributes:
        entries: Op key -> milliseconds of the isolated piece (median or min of its repeats).
        fingerprint: the device it was measured on (nas.latency.device_fingerprint).
        batch: images per timed pass.
        space: the space it was built for.
        meta: repeats, warm-up, build seconds and date.
    """

    entries: dict
    fingerprint: dict
    batch: int = 1
    space: str = ""
    meta: Optional[dict] = None

    @property
    def stat(self) -> str:
        """How each entry's repeats became one number: median or min."""
        return (self.meta or {}).get("stat", "median")

    def predict(self, spec: ArchSpec) -> float:
        """Predicted milliseconds of `spec`: the sum of its pieces' entries.

        Raises:
            TableError naming the first piece the table lacks.
        """
        total = 0.0
        for op in spec_ops(spec):
            if op.key not in self.entries:
                hint = f" --classes {op.classes}" if op.kind == "head" else ""
                raise TableError(f"latency table of space {self.space!r} has no entry for {op.key!r}; "
                                 f"build one for the space searched (`nas latency table --space S{hint}`)")
            total += self.entries[op.key]
        return total

    def save(self, path: Path) -> None:
        """Write the table as JSON, atomically."""
        from .atomic import write_text
        data = {"space": self.space, "batch": self.batch, "fingerprint": self.fingerprint,
                "meta": self.meta or {}, "entries": self.entries}
        write_text(Path(path), json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: Path, device: str = "cpu",
             warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> "LatencyTable":
        """Read a table; `warn` gets one line when it was measured on another device fingerprint.

        Args:
            path: the JSON file `nas latency table` wrote.
            device: the device its predictions are for (cpu, cuda or cuda:N).
            warn: where the mismatch warning goes (default: stderr).
        """
        try:
            data = json.loads(Path(path).read_text())
            table = cls(data["entries"], data["fingerprint"], int(data.get("batch", 1)),
                        data.get("space", ""), data.get("meta"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TableError(f"cannot read latency table {path}: {exc}; build one with "
                             "`nas latency table --space S --out T.json`") from None
        from .train.runtime import resolve_device
        line = fingerprint_warning(table.fingerprint, device_fingerprint(resolve_device(device)), path)
        if line:
            warn(line)
        return table


def fingerprint_warning(table: dict, here: dict, path) -> Optional[str]:
    """One warning line when a table was measured on another device fingerprint, else None."""
    if table == here:
        return None
    return (f"warning: latency table {path} was measured on [{fingerprint_id(table)}], this is "
            f"[{fingerprint_id(here)}]; its predictions may not hold here (rebuild it on this device)")


def time_op(op: Op, device: torch.device, batch: int = 1, repeats: int = TABLE_REPEATS,
            stat: str = "median") -> float:
    """Milliseconds of one piece run alone at its input shape (median or min of `repeats`)."""
    module, x = as_timed(op.module(), torch.randn(batch, op.cin, op.hw, op.hw), device)
    return time_forward_ms(module, x, device, repeats, WARMUP, stat)


def build_table(space: SearchSpace, device: torch.device, batch: int = 1, classes: int = 10,
                repeats: int = TABLE_REPEATS, stat: str = "median", max_entries: int = MAX_ENTRIES,
                log: Callable[[str], None] = print) -> LatencyTable:
    """Time every distinct piece of `space` once, as an isolated module at its input shape.

    Args:
        space: the search space.
        device: where to time.
        batch: images per pass.
        classes: the classifier's width.
        repeats: timed passes per piece (after WARMUP untimed ones).
        stat: median or min of the repeats (kept in the table; its check measures nets alike).
        max_entries: refuse (before timing anything) a space with more distinct pieces.
        log: progress lines (i/N and ETA, about every 5 %).
    """
    ops = space_ops(space, classes)
    if len(ops) > max_entries:
        raise TableError(f"space {space.name} has {len(ops):,} distinct pieces, more than --max-entries "
                         f"{max_entries:,}; raise it if about {fmt_seconds(len(ops) * 0.01)} (m:ss, at ~10 ms a "
                         "piece) or more of timing is fine")
    log(f"latency table for space {space.name}: {len(ops)} distinct pieces (stem, blocks, head) on "
        f"{fingerprint_id(device_fingerprint(device))}, batch {batch}, {stat} of {repeats} repeats each")
    entries, start = {}, time.perf_counter()
    for i, op in enumerate(ops, 1):
        entries[op.key] = time_op(op, device, batch, repeats, stat)
        if i == len(ops) or i % max(1, len(ops) // 20) == 0:
            spent = time.perf_counter() - start
            log(f"  {i}/{len(ops)} timed, {fmt_seconds(spent)} so far, "
                f"ETA {fmt_seconds(spent / i * (len(ops) - i))}")
    meta = {"repeats": repeats, "warmup": WARMUP, "stat": stat, "classes": classes,
            "seconds": round(time.perf_counter() - start, 1),
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    return LatencyTable(entries, device_fingerprint(device), batch, space.name, meta)
