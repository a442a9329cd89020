"""MnasNet-style factorized hierarchical search spaces, defined in YAML.

A space fixes the stem, head, resolution and the stride pattern; each stage picks
its block type, expand ratio (MBConv only), kernel, SE ratio, skip, output width
(a multiplier of the stage's base channels, rounded to 8) and repeats (a delta on
the base). All blocks of a stage share the choice. A sampled candidate is an
ordinary ArchSpec.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Protocol

import search_spaces

from ..counting import stage_macs
from ..errors import NasError
from ..presets import resolve_spec
from ..registry import Conv, block_names, get_block, out_size
from ..rounding import round_width
from ..yamlfile import named_file, read_yaml
from ..spec import ArchSpec, BatchNormSpec, HeadSpec, SpecError, StageSpec, StemSpec

SPACE_DIR = Path(search_spaces.__file__).resolve().parent
CHOICE_KEYS = ("block", "expand", "kernel", "se", "skip", "width", "repeats")
SPACE_KEYS = ("name", "description", "resolution", "activation", "dropout", "drop_path", "bn",
              "stem", "head", "choices", "stages", "baselines", "references", "min_repeats")


def _takes_expand(block: str) -> bool:
    return get_block(block).expand == "mbconv"


def _variants(blocks, expands) -> list[tuple[str, float]]:
    return [(b, e) for b in blocks for e in (expands if _takes_expand(b) else (1,))]


class SpaceError(NasError):
    """A search-space file is invalid."""


class Suggester(Protocol):
    """The part of optuna.Trial a space needs (any object with this method will do)."""

    def suggest_categorical(self, name: str, choices: list) -> Any:
        """One of `choices` for the parameter called `name`."""
        ...


@dataclass(frozen=True)
class StageChoices:
    """One stage of a space: its fixed frame and the values each choice may take.

    Attributes:
        out: base output channels; the width multipliers apply to it (rounded to 8).
        repeats: base number of blocks; each value of repeats_delta is added to it.
        stride: stride of the stage's first block (fixed).
        block: block types the stage may use.
        expand: expansion ratios (offered only to blocks with an MBConv expansion).
        kernel: kernel sizes.
        se: SE ratios (0 for none).
        skip: whether the identity shortcut is used.
        width: output-width multipliers of `out`.
        repeats_delta: offsets added to `repeats`.
    """

    out: int
    repeats: int
    stride: int
    block: tuple[str, ...]
    expand: tuple[float, ...]
    kernel: tuple[int, ...]
    se: tuple[float, ...]
    skip: tuple[bool, ...]
    width: tuple[float, ...]
    repeats_delta: tuple[int, ...]

    def block_variants(self) -> list[tuple[str, float]]:
        """Distinct (block, expand) networks: only blocks with an expansion ratio take the
        expand choices, and a block that is another's expand-1 spelling (``ds`` is
        ``mbconv e1``) counts once."""
        seen, variants = set(), []
        for block, expand in _variants(self.block, self.expand):
            kind = get_block(block)
            key = (kind.same_as or block, expand)
            if key not in seen:
                seen.add(key)
                variants.append((block, expand))
        return variants

    def size(self) -> int:
        """Number of distinct stages: block variants x kernels x SE x skip x widths x repeats."""
        return (len(self.block_variants()) * len(self.kernel) * len(self.se) * len(self.skip)
                * len(self.width) * len(self.repeats_delta))


@dataclass(frozen=True)
class SearchSpace:
    """A parsed search space: the fixed frame every candidate shares and the per-stage choices.

    Attributes:
        name: the space's name.
        description: one line from the file.
        base: stem, head, resolution, activation, dropout, drop_path and BN of every
            candidate (its stages are a placeholder).
        stages: the choices of each stage, in network order.
        baselines: (name, params) of known nets written in this space's choices, which a
            search trains first.
        references: papers or sources the file cites.
        min_repeats: the fewest blocks a stage may end up with after its repeats delta.
        path: the file the space came from, when it came from one.
    """

    name: str
    description: str
    base: ArchSpec                 # stem, head, resolution, activation, ... (stages unused)
    stages: tuple[StageChoices, ...]
    baselines: tuple[tuple[str, dict], ...]
    references: tuple[str, ...]
    min_repeats: int = 1
    path: Optional[Path] = None

    # ---- candidates ------------------------------------------------------------
    def suggest(self, trial: Suggester) -> dict[str, Any]:
        """Ask a trial for one value per choice; MBConv-only choices are conditional.

        Args:
            trial: an optuna.Trial (or any Suggester).

        Returns:
            the choices, keyed s{i}_{choice} (s0_block, s0_kernel, ...).
        """
        params: dict[str, Any] = {}
        for i, st in enumerate(self.stages):
            block = trial.suggest_categorical(f"s{i}_block", list(st.block))
            params[f"s{i}_block"] = block
            if _takes_expand(block):
                params[f"s{i}_expand"] = trial.suggest_categorical(f"s{i}_expand", list(st.expand))
            for key, values in (("kernel", st.kernel), ("se", st.se), ("skip", st.skip),
                                ("width", st.width), ("repeats", st.repeats_delta)):
                params[f"s{i}_{key}"] = trial.suggest_categorical(f"s{i}_{key}", list(values))
        return params

    def to_spec(self, params: Mapping[str, Any], num_classes: Optional[int] = None,
                name: Optional[str] = None) -> ArchSpec:
        """The ArchSpec of one candidate.

        Args:
            params: one value per choice, keyed as `suggest` returns them.
            num_classes: classifier width (default: the space's).
            name: the spec's name (default: <space>-candidate).
        """
        stages = []
        for i, st in enumerate(self.stages):
            block = params[f"s{i}_block"]
            stages.append(StageSpec(
                block=block,
                repeats=max(self.min_repeats, st.repeats + int(params[f"s{i}_repeats"])),
                kernel=int(params[f"s{i}_kernel"]), stride=st.stride,
                out=round_width(st.out, float(params[f"s{i}_width"])),
                expand=params[f"s{i}_expand"] if _takes_expand(block) else 1,
                se=float(params[f"s{i}_se"]), skip=bool(params[f"s{i}_skip"])))
        return self.base.replace(name=name or f"{self.name}-candidate", stages=tuple(stages),
                                 num_classes=num_classes or self.base.num_classes)

    def params_from_spec(self, spec: ArchSpec) -> dict[str, Any]:
        """The choices that rebuild `spec` in this space (for enqueuing baselines).

        Args:
            spec: a net with as many stages as the space.

        Raises:
            SpaceError naming the first stage whose block, kernel, width, ... is not a choice.
        """
        if len(spec.stages) != len(self.stages):
            raise SpaceError(f"{spec.name} has {len(spec.stages)} stages; space {self.name} has "
                             f"{len(self.stages)}")
        params: dict[str, Any] = {}
        for i, (stage, st) in enumerate(zip(spec.stages, self.stages)):
            matches = [w for w in st.width if round_width(st.out, w) == stage.out]
            width = min(matches, key=lambda w: abs(w - stage.out / st.out)) if matches else None
            delta = stage.repeats - st.repeats
            found = {"block": stage.block in st.block, "expand": not _takes_expand(stage.block) or stage.expand in st.expand,
                     "kernel": stage.kernel in st.kernel, "se": stage.se in st.se,
                     "skip": stage.skip in st.skip, "width": width is not None,
                     "repeats": delta in st.repeats_delta, "stride": stage.stride == st.stride}
            missing = [k for k, ok in found.items() if not ok]
            if missing:
                raise SpaceError(f"{spec.name} stage {i + 1} ({stage.to_string()}) is outside space "
                                 f"{self.name}: its {', '.join(missing)} is not among the choices")
            params[f"s{i}_block"] = stage.block
            if _takes_expand(stage.block):
                params[f"s{i}_expand"] = stage.expand
            params.update({f"s{i}_kernel": stage.kernel, f"s{i}_se": stage.se, f"s{i}_skip": stage.skip,
                           f"s{i}_width": width, f"s{i}_repeats": delta})
        return params

    # ---- size and MACs range ---------------------------------------------------
    def size(self) -> int:
        """Number of distinct candidates: the product of the stages' sizes."""
        return math.prod(st.size() for st in self.stages)

    def macs_range(self, num_classes: Optional[int] = None) -> tuple[int, int]:
        """Exact smallest and largest MACs over the whole space.

        A stage's MACs depend only on its own choices and its input width, so a
        dynamic programme over stages, keyed by the width passed on, is exact.

        Args:
            num_classes: classifier width (default: the space's).
        """
        classes = num_classes or self.base.num_classes
        hw = out_size(self.base.resolution, self.base.stem.stride)
        stem = Conv(self.base.in_channels, self.base.stem.channels, self.base.stem.kernel, 1, hw).macs
        frontier = {self.base.stem.channels: (stem, stem)}
        for st in self.stages:
            nxt: dict[int, tuple[int, int]] = {}
            out_hw = hw
            for (block, expand) in st.block_variants():
                for kernel in st.kernel:
                    for se in st.se:
                        for width in st.width:
                            out = round_width(st.out, width)
                            for delta in st.repeats_delta:
                                stage = StageSpec(block, max(self.min_repeats, st.repeats + delta), kernel,
                                                  st.stride, out, expand, se)
                                for cin, (lo, hi) in frontier.items():
                                    macs, out_hw = stage_macs(stage, cin, hw)
                                    old = nxt.get(out, (math.inf, -math.inf))
                                    nxt[out] = (min(old[0], lo + macs), max(old[1], hi + macs))
            frontier, hw = nxt, out_hw
        head = self.base.head.channels
        ends = [(lo + (hw * hw * c * head if head else 0) + (head or c) * classes,
                 hi + (hw * hw * c * head if head else 0) + (head or c) * classes)
                for c, (lo, hi) in frontier.items()]
        return int(min(e[0] for e in ends)), int(max(e[1] for e in ends))

    def baseline_params(self) -> list[tuple[str, dict]]:
        """(name, params) of the file's baselines, in file order."""
        return list(self.baselines)


# ---- loading ---------------------------------------------------------------------
def _as_tuple(value: Any, key: str, where: str) -> tuple:
    if not isinstance(value, (list, tuple)) or not value:
        raise SpaceError(f"{where}: choices.{key} must be a non-empty list")
    return tuple(value)


def _stage_choices(stage: Mapping[str, Any], defaults: Mapping[str, Any], index: int,
                   where: str) -> StageChoices:
    here = f"{where}: stages[{index}]"
    unknown = [k for k in stage if k not in ("out", "repeats", "stride", "choices")]
    if unknown:
        raise SpaceError(f"{here}: unknown key {unknown[0]!r}; allowed keys: out, repeats, stride, choices")
    for key in ("out", "repeats", "stride"):
        if not isinstance(stage.get(key), int) or stage[key] < 1:
            raise SpaceError(f"{here}: {key} must be a positive integer")
    if stage["stride"] not in (1, 2):
        raise SpaceError(f"{here}: stride {stage['stride']} must be 1 or 2")
    overrides = stage.get("choices", {}) or {}
    bad = [k for k in overrides if k not in CHOICE_KEYS]
    if bad:
        raise SpaceError(f"{here}: unknown choice {bad[0]!r}; choices are {', '.join(CHOICE_KEYS)}")
    merged = {**defaults, **overrides}
    missing = [k for k in CHOICE_KEYS if k not in merged]
    if missing:
        raise SpaceError(f"{here}: no values for choice {missing[0]!r} (set it under choices)")
    c = {k: _as_tuple(merged[k], k, here) for k in CHOICE_KEYS}
    searchable = block_names(searchable_only=True)
    odd = [b for b in c["block"] if b not in searchable]
    if odd:
        raise SpaceError(f"{here}: block {odd[0]!r} is not searchable; use {', '.join(searchable)}")
    if any(w <= 0 for w in c["width"]):
        raise SpaceError(f"{here}: width multipliers must be positive")
    # every combination must be a valid stage: check the extremes through StageSpec
    for block, expand in _variants(c["block"], c["expand"]):
        for kernel in c["kernel"]:
            for se in c["se"]:
                try:
                    StageSpec(block, 1, kernel, stage["stride"], stage["out"], expand, se)
                except SpecError as exc:
                    raise SpaceError(f"{here}: {exc}") from exc
    return StageChoices(stage["out"], stage["repeats"], stage["stride"], c["block"], c["expand"],
                        c["kernel"], c["se"], c["skip"], c["width"], tuple(int(d) for d in c["repeats"]))


def parse_space(data: Mapping[str, Any], where: str, path: Optional[Path] = None) -> SearchSpace:
    """A SearchSpace from the mapping of a search-space YAML file, every key and choice checked.

    Args:
        data: the parsed file (keys in SPACE_KEYS; name, resolution, stem, head, stages
            and choices are required).
        where: how error messages name the source (usually the path).
        path: the file, recorded on the space.

    Raises:
        SpaceError with a one-line message naming the offending key.
    """
    if not isinstance(data, Mapping):
        raise SpaceError(f"{where}: a search space must be a mapping")
    unknown = [k for k in data if k not in SPACE_KEYS]
    if unknown:
        raise SpaceError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(SPACE_KEYS)}")
    for key in ("name", "resolution", "stem", "head", "stages", "choices"):
        if key not in data:
            raise SpaceError(f"{where}: missing key {key!r}")
    if not isinstance(data["stages"], list) or not data["stages"]:
        raise SpaceError(f"{where}: stages must be a non-empty list")
    stages = tuple(_stage_choices(s, data["choices"], i, where) for i, s in enumerate(data["stages"]))
    try:
        base = ArchSpec(
            name=data["name"], resolution=data["resolution"], num_classes=10,
            stem=StemSpec(**data["stem"]), head=HeadSpec(**data["head"]),
            stages=(StageSpec("mbconv", 1, 3, 1, 8),),
            activation=data.get("activation", "silu"), dropout=data.get("dropout", 0.2),
            drop_path=data.get("drop_path", 0.2), bn=BatchNormSpec(**data.get("bn", {})))
    except (SpecError, TypeError) as exc:
        raise SpaceError(f"{where}: {exc}") from exc
    space = SearchSpace(data["name"], data.get("description", ""), base, stages, (),
                        tuple(data.get("references", []) or []), int(data.get("min_repeats", 1)), path)
    baselines = []
    for i, entry in enumerate(data.get("baselines", []) or []):
        baselines.append(_baseline(space, entry, f"{where}: baselines[{i}]"))
    return SearchSpace(space.name, space.description, base, stages, tuple(baselines),
                       space.references, space.min_repeats, path)


def _baseline(space: SearchSpace, entry: Mapping[str, Any], where: str) -> tuple[str, dict]:
    if not isinstance(entry, Mapping) or "name" not in entry:
        raise SpaceError(f"{where}: a baseline needs a name and either preset or stages")
    try:
        if "preset" in entry:
            spec = resolve_spec(entry["preset"])
            for key in ("resolution", "activation"):
                if getattr(spec, key) != getattr(space.base, key):
                    raise SpaceError(f"preset {entry['preset']} has {key} {getattr(spec, key)}, the "
                                     f"space {getattr(space.base, key)}")
        elif "stages" in entry:
            spec = space.base.replace(stages=tuple(StageSpec.from_string(s) for s in entry["stages"]))
        else:
            raise SpaceError("give either preset: NAME or stages: [stage strings]")
        return entry["name"], space.params_from_spec(spec)
    except (SpaceError, SpecError) as exc:
        raise SpaceError(f"{where} ({entry['name']}): {exc}") from exc


def space_names() -> list[str]:
    """Names of the spaces shipped in search_spaces/ (the YAML file stems), sorted."""
    return sorted(p.stem for p in SPACE_DIR.glob("*.yaml"))


def load_space(name_or_path: str) -> SearchSpace:
    """A YAML path, or the name of a space shipped in search_spaces/ (cifar, cifar16, mnasnet, tiny).

    Args:
        name_or_path: a space name (see `space_names`) or a path to a YAML file.

    Raises:
        SpaceError when the file is missing or invalid.
    """
    path = named_file(name_or_path, SPACE_DIR, "search space", SpaceError)
    return parse_space(read_yaml(path, "search space", SpaceError), str(path), path)
