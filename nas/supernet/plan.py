"""What a supernet of a search space holds, and which subnets it can run (no torch here).

A supernet keeps, at every block position of every stage, the largest weights any
candidate needs there, and runs a subnet by slicing them:

- depth: a stage runs its first `repeats` blocks (OFA/BigNAS);
- width (a stage's output channels) and an MBConv's hidden channels: the *first* c
  channels of the shared tensors, in a fixed order. OFA re-sorts channels by L1 norm
  during progressive shrinking; BigNAS keeps a fixed order and relies on the sandwich
  rule training the narrowest subnet every step, so the first channels learn to carry
  the most. We follow BigNAS: no re-sorting step, and an extracted net's weights are a
  plain prefix of the supernet's;
- kernel: the largest kernel is stored; a smaller one is its centre crop (BigNAS),
  without OFA's learned kernel-transform matrices — fewer tensors to train on a CPU, and
  an extracted k3 is exactly the centre of the shared k5;
- SE: one SE module of the largest squeeze width; a smaller ratio uses its first
  channels, ratio 0 skips it; skip on/off needs no weights.

Operations whose weights cannot nest get their own weights at each position (single-path
one-shot): an expanding MBConv (expand > 1), a depthwise-separable block (MBConv with
expand 1: its depthwise conv reads the block input, not an expansion) and a plain conv.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ..errors import NasError
from ..registry import get_block
from ..rounding import round_width
from ..search.space import SearchSpace
from ..spec import ArchSpec, StageSpec

OPS = ("mbconv", "ds", "conv")  # expanding MBConv, MBConv with expand 1, plain conv


class SupernetError(NasError):
    """A space a supernet cannot cover, or a net it cannot run."""


def op_of(stage: StageSpec) -> str:
    """The weight-sharing operation that runs `stage`'s blocks (one of OPS)."""
    kind = get_block(stage.block)
    name = kind.same_as or stage.block
    if name == "mbconv":
        return "ds" if stage.expand == 1 else "mbconv"
    if name == "conv":
        return "conv"
    raise SupernetError(f"block {stage.block!r} has no supernet operation; a supernet covers "
                        f"{', '.join(('mbconv', 'ds', 'conv'))} blocks")


@dataclass(frozen=True)
class StagePlan:
    """The largest weights one stage of the supernet holds.

    Attributes:
        stride: the stride of the stage's first block (fixed by the space).
        max_out: the widest output any candidate gives the stage.
        max_repeats: the most blocks any candidate gives it.
        max_kernel: the largest kernel of its choices (smaller ones are centre crops).
        max_expand: the largest expansion ratio of its expanding MBConv (1 when none).
        max_se: the largest SE ratio (0: the stage never has SE).
        ops: the operations its candidates use (a subset of OPS).
    """

    stride: int
    max_out: int
    max_repeats: int
    max_kernel: int
    max_expand: float
    max_se: float
    ops: tuple[str, ...]


@dataclass(frozen=True)
class SupernetPlan:
    """The shape of a space's supernet: the space's fixed frame and one StagePlan a stage."""

    space: SearchSpace
    stages: tuple[StagePlan, ...]

    @property
    def base(self) -> ArchSpec:
        """Stem, head, resolution, activation and BN every subnet shares."""
        return self.space.base

    def stage_inputs(self) -> list[int]:
        """The widest input each stage's blocks may receive (the previous stage's max, or the stem)."""
        return [self.base.stem.channels] + [s.max_out for s in self.stages[:-1]]

    def check_runs(self, spec: ArchSpec) -> None:
        """Refuse, in one line naming the stage and the choice, a net this supernet cannot run."""
        frame = self.base
        same = (spec.resolution == frame.resolution and spec.stem == frame.stem and spec.head == frame.head
                and spec.activation == frame.activation and spec.in_channels == frame.in_channels)
        if not same:
            raise SupernetError(f"{spec.name} does not share the space's frame (resolution, stem, head, "
                                f"activation, input channels); the supernet of {self.space.name} runs only its nets")
        if len(spec.stages) != len(self.stages):
            raise SupernetError(f"{spec.name} has {len(spec.stages)} stages; the supernet of "
                                f"{self.space.name} has {len(self.stages)}")
        for i, (stage, plan) in enumerate(zip(spec.stages, self.stages)):
            _check_stage(stage, plan, f"{spec.name} stage {i + 1} ({stage.to_string()})")

    # ---- the subnets the sandwich rule trains --------------------------------------------
    def largest(self, num_classes: int) -> ArchSpec:
        """The sandwich's teacher: per stage the costliest choice of the operation whose
        weights nest the most (an expanding MBConv where the stage offers one, else ``ds``,
        else ``conv``), so that distillation reaches every shared MBConv slice. (The costliest
        subnet overall is often all plain convs, whose weights no MBConv shares.)"""
        return self._extreme(num_classes, max, "largest", nested_only=True)

    def smallest(self, num_classes: int) -> ArchSpec:
        """The cheapest subnet by MACs, chosen stage by stage the same way."""
        return self._extreme(num_classes, min, "smallest")

    def random(self, rng: random.Random, num_classes: int, name: str = "random") -> ArchSpec:
        """A uniformly sampled candidate of the space."""
        return self.space.to_spec(self.space.suggest(_RandomSuggester(rng)), num_classes, name)

    def _extreme(self, num_classes: int, pick, name: str, nested_only: bool = False) -> ArchSpec:
        from ..counting import stage_macs  # the counter: pure, no torch
        from ..registry import out_size

        hw = out_size(self.base.resolution, self.base.stem.stride)
        cin, stages = self.base.stem.channels, []
        for st, plan in zip(self.space.stages, self.stages):
            options = []
            for block, expand in st.block_variants():
                if nested_only and op_of(StageSpec(block, 1, 3, st.stride, st.out, expand)) != plan.ops[0]:
                    continue
                for kernel in st.kernel:
                    for se in st.se:
                        for width in st.width:
                            for delta in st.repeats_delta:
                                stage = StageSpec(block, max(self.space.min_repeats, st.repeats + delta), kernel,
                                                  st.stride, round_width(st.out, width), expand, se,
                                                  True in st.skip)
                                options.append((stage_macs(stage, cin, hw)[0], stage.to_string(), stage))
            macs, _, chosen = pick(options, key=lambda o: (o[0], o[1]))
            stages.append(chosen)
            hw = stage_macs(chosen, cin, hw)[1]
            cin = chosen.out
        return self.base.replace(name=f"{self.space.name}-{name}", stages=tuple(stages), num_classes=num_classes)


class _RandomSuggester:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: list) -> Any:
        return self.rng.choice(choices)


def _check_stage(stage: StageSpec, plan: StagePlan, what: str) -> None:
    op = op_of(stage)
    problems = []
    if op not in plan.ops:
        problems.append(f"operation {op} is not among its choices ({', '.join(plan.ops)})")
    if stage.stride != plan.stride:
        problems.append(f"stride {stage.stride} is not the stage's {plan.stride}")
    if stage.out > plan.max_out:
        problems.append(f"{stage.out} channels exceed the widest {plan.max_out}")
    if stage.repeats > plan.max_repeats:
        problems.append(f"{stage.repeats} blocks exceed the most {plan.max_repeats}")
    if stage.kernel > plan.max_kernel:
        problems.append(f"kernel {stage.kernel} exceeds the largest {plan.max_kernel}")
    if op == "mbconv" and stage.expand > plan.max_expand:
        problems.append(f"expand {_fmt(stage.expand)} exceeds the largest {_fmt(plan.max_expand)}")
    if stage.se > plan.max_se:
        problems.append(f"SE {stage.se} exceeds the largest {plan.max_se}")
    if problems:
        raise SupernetError(f"{what}: {problems[0]}")


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def plan_supernet(space: SearchSpace) -> SupernetPlan:
    """The supernet of `space`, or a one-line refusal naming the first choice it cannot cover.

    Args:
        space: a parsed search space (nas.search.space.load_space).
    """
    stages = []
    for i, st in enumerate(space.stages):
        even = [k for k in st.kernel if k % 2 == 0]
        if even:
            raise SupernetError(f"space {space.name} stage {i + 1}: choice kernel={even[0]} is even; "
                                "a smaller kernel is the centre of the largest only for odd sizes")
        ops = []
        for block, expand in st.block_variants():
            try:
                op = op_of(StageSpec(block, 1, min(st.kernel), st.stride, st.out, expand))
            except SupernetError as exc:
                raise SupernetError(f"space {space.name} stage {i + 1}: choice block={block}: {exc}") from None
            if op not in ops:
                ops.append(op)
        expands = [e for b, e in st.block_variants() if op_of(StageSpec(b, 1, 3, st.stride, st.out, e)) == "mbconv"]
        stages.append(StagePlan(
            stride=st.stride, max_out=max(round_width(st.out, w) for w in st.width),
            max_repeats=max(space.min_repeats, st.repeats + max(st.repeats_delta)),
            max_kernel=max(st.kernel), max_expand=max(expands, default=1.0), max_se=max(st.se),
            ops=tuple(op for op in OPS if op in ops)))
    return SupernetPlan(space, tuple(stages))


def describe(plan: SupernetPlan) -> str:
    """A few lines: what each stage of the supernet holds."""
    lines = []
    for i, st in enumerate(plan.stages):
        lines.append(f"stage {i + 1}: ops {'/'.join(st.ops)}, <= {st.max_repeats} blocks, <= {st.max_out} ch, "
                     f"k<={st.max_kernel}, e<={_fmt(st.max_expand)}, se<={st.max_se}, stride {st.stride}")
    return "\n".join(lines)
