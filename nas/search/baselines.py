"""The space's hand-designed baselines as search trials: at their own sizes or at the target's.

`--baselines matched` (the default) rescales each baseline to the search's MACs target with the
equal-cost solver of `nas compare --match-macs` (scaling.single.match_to_macs, by width), so
the baselines compete with the sampled candidates at the same cost; `as-is` queues them at
their own sizes (as searches did before the option); `none` queues none.

A rescaled baseline is usually not a point of the space: width scaling also rescales the stem
and the head, which the space fixes, and lands between its width choices. Such a baseline is a
*fixed-spec trial*: its user attribute FIXED_SPEC holds the net's plain-data form and the
runner trains exactly that net (`trial_spec`). The trial's Optuna params are the nearest point
of the space (the baseline's own block, kernel, SE and skip choices; the width and repeats
choices nearest the rescaled net's), so the sampler learns from what was trained as closely as
the space can say it, and every search-space sampler sees complete params.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..counting import analytic_macs
from ..spec import ArchSpec
from .objectives import Objective
from .space import SearchSpace

MODES = ("none", "as-is", "matched")
DEFAULT_MODE = "matched"
LEGACY_MODE = "as-is"  # what a search pinned before --baselines existed did
MATCH_BY = "width"
FIXED_SPEC = "fixed_spec"  # user attribute of a fixed-spec trial: the net it trains
TRIAL_ATTRS = ("baseline", "baseline_mode", "baseline_target", "baseline_gap_pct", FIXED_SPEC)


@dataclass(frozen=True)
class QueuedBaseline:
    """One baseline as the search queues it.

    Attributes:
        name: the baseline's name in the space file.
        mode: as-is or matched.
        params: the space point the trial records (the sampler's view of it).
        spec: the net the trial trains.
        fixed: whether `spec` is not the space's net for `params` (a fixed-spec trial).
        target: the MACs it was matched to (None for as-is).
    """

    name: str
    mode: str
    params: dict
    spec: ArchSpec
    fixed: bool
    target: Optional[int] = None

    @property
    def macs(self) -> int:
        """The realised MACs of the net trained."""
        return analytic_macs(self.spec)

    @property
    def gap_pct(self) -> Optional[float]:
        """How far the realised MACs miss the target, in percent of the target."""
        return None if self.target is None else (self.macs / self.target - 1) * 100

    def user_attrs(self) -> dict[str, Any]:
        """What the queued trial records: baseline=NAME, the mode, the target, the gap and,
        for a fixed-spec trial, the net itself."""
        attrs: dict[str, Any] = {"baseline": self.name, "baseline_mode": self.mode}
        if self.target is not None:
            attrs.update(baseline_target=self.target, baseline_gap_pct=round(self.gap_pct, 3))
        if self.fixed:
            attrs[FIXED_SPEC] = self.spec.to_dict()
        return attrs

    def describe(self) -> str:
        """One line for the search's log."""
        if self.target is None:
            return f"{self.name} at its own {self.macs / 1e6:.2f} M MACs"
        return (f"{self.name} rescaled by {MATCH_BY} to {self.macs / 1e6:.3f} M MACs "
                f"({self.gap_pct:+.1f} % off the {self.target / 1e6:.3g} M target)")


def nearest_params(space: SearchSpace, params: Mapping[str, Any], spec: ArchSpec) -> dict[str, Any]:
    """`params` (a baseline's choices) with each stage's width and repeats choices replaced by
    the ones nearest `spec`'s stage (a rescaled copy of that baseline)."""
    nearest = dict(params)
    for i, (stage, st) in enumerate(zip(spec.stages, space.stages)):
        nearest[f"s{i}_width"] = min(st.width, key=lambda w: abs(w - stage.out / st.out))
        nearest[f"s{i}_repeats"] = min(st.repeats_delta, key=lambda d: abs(d - (stage.repeats - st.repeats)))
    return nearest


def _matched(space: SearchSpace, name: str, params: dict, spec: ArchSpec,
             objective: Objective) -> Optional[QueuedBaseline]:
    from scaling.single import match_to_macs

    target = int(objective.target)
    chosen = match_to_macs(spec, target, MATCH_BY)
    if objective.rejects(analytic_macs(chosen.spec)):  # hard budget: the achievable net below it
        if chosen.below <= 0:
            return None
        chosen = match_to_macs(spec, round(chosen.below * analytic_macs(spec)), MATCH_BY)
        if objective.rejects(analytic_macs(chosen.spec)):
            return None
    point = nearest_params(space, params, chosen.spec)
    rescaled = chosen.spec.replace(name=f"{name}@{target / 1e6:.3g}M")
    fixed = (space.to_spec(point, num_classes=spec.num_classes).canonical_string()
             != rescaled.canonical_string())
    return QueuedBaseline(name, "matched", point, rescaled, fixed, target)


def plan_baselines(space: SearchSpace, mode: str, objective: Objective, num_classes: int,
                   log: Callable[[str], None] = print) -> list[QueuedBaseline]:
    """The baselines a new search queues first, in the space file's order.

    In hard-budget mode none is queued only to be rejected: a baseline over the budget is
    rescaled to the achievable net at or below it (matched) or skipped (as-is, or when no
    width reaches below the budget), and the log says which.

    Args:
        space: the search space (its `baselines`).
        mode: none, as-is or matched.
        objective: the search's objective (its target and whether it rejects).
        num_classes: the data set's classes.
        log: where a skipped baseline is reported.
    """
    if mode == "matched" and objective.cost.kind != "macs":
        # the equal-cost solver matches MACs; a params or latency target keeps the baselines' sizes
        log(f"note: --baselines matched rescales to a MACs target; with --cost {objective.cost.kind} "
            f"the baselines are queued at their own sizes")
        mode = "as-is"
    queued = []
    for name, params in (space.baseline_params() if mode != "none" else ()):
        spec = space.to_spec(params, num_classes=num_classes, name=name)
        if mode == "as-is":
            over = objective.mode == "hard" and objective.rejects(objective.cost.of(spec))
            entry = None if over else QueuedBaseline(
                name, "as-is", dict(params), spec, False)
        else:
            entry = _matched(space, name, params, spec, objective)
        if entry is None:
            why = "no width of it fits" if mode == "matched" else "--baselines as-is keeps its size"
            log(f"baseline {name} ({analytic_macs(spec) / 1e6:.2f} M MACs) skipped: over the "
                f"{objective.target:,g} {objective.cost.label} hard budget and {why}")
            continue
        queued.append(entry)
    return queued


def trial_spec(space: SearchSpace, attrs: Mapping[str, Any], params: Mapping[str, Any],
               num_classes: int, name: str) -> ArchSpec:
    """The net a trial trains: its fixed spec when it has one, else the space's net for its params.

    Args:
        space: the search space.
        attrs: the trial's user attributes.
        params: the trial's params (as `SearchSpace.suggest` returned them).
        num_classes: the data set's classes.
        name: the spec's name.
    """
    if FIXED_SPEC in attrs:
        return ArchSpec.from_dict(attrs[FIXED_SPEC]).replace(name=name)
    return space.to_spec(params, num_classes=num_classes, name=name)


def with_pinned_mode(config: Any, log: Callable[[str], None] = print) -> Any:
    """`config` resuming its run folder as that folder was made. A search.yaml without a
    `baselines` key was pinned before --baselines existed: its baselines were queued at their
    own sizes (LEGACY_MODE) and are in its study already, so the flag can change nothing. Such a
    run resumes with baselines = None, which keeps the key out of the pinned settings (the
    folder's file and the study's record stay as they were); reports read the mode from the
    study's trials, where a trial without `baseline_mode` was queued as-is."""
    import yaml

    saved = Path(config.out) / "search.yaml"
    if config.baselines is None or not saved.is_file():
        return config
    if "baselines" in (yaml.safe_load(saved.read_text()) or {}):
        return config
    log(f"note: {config.out} was searched before --baselines existed (its baselines were queued at "
        f"their own sizes): resumed as it was, whatever --baselines says")
    return dataclasses.replace(config, baselines=None)
