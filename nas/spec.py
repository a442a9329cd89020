"""The architecture spec: one immutable description of a network.

A spec is what the search samples, the counter counts, the builder turns into a
PyTorch module, the scaler grows and the trainer saves next to its weights.
Every constructor validates, so an ArchSpec that exists is a buildable net.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from .atomic import write_text
from .errors import NasError
from .registry import RegistryError, get_block
from .yamlfile import load_yaml

ACTIVATIONS = ("silu", "relu", "relu6")
# bounds that keep every command's work finite (B7 has 55 blocks at 600 px; a spec at these
# limits is still counted in seconds)
MAX_BLOCKS = 2000
MAX_RESOLUTION = 65536
MAX_CHANNELS = 1 << 20


class SpecError(NasError, ValueError):
    """An architecture spec (or a file holding one) is invalid."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SpecError(message)


def _check_kernel(kernel: Any, what: str) -> None:
    _require(isinstance(kernel, int) and not isinstance(kernel, bool),
             f"{what}: kernel {kernel!r} must be an integer")
    _require(kernel >= 1 and kernel % 2 == 1,
             f"{what}: kernel {kernel} is not odd; use an odd size such as 3, 5 or 7")


def _check_stride(stride: Any, what: str) -> None:
    _require(stride in (1, 2) and not isinstance(stride, bool),
             f"{what}: stride {stride!r} must be 1 or 2")


def _check_int(value: Any, minimum: int, what: str, hint: str = "") -> None:
    _require(isinstance(value, int) and not isinstance(value, bool),
             f"{what} {value!r} must be an integer")
    _require(value >= minimum, f"{what} {value} must be >= {minimum}{hint}")


def _check_fraction(value: Any, what: str) -> None:
    _require(isinstance(value, (int, float)) and not isinstance(value, bool),
             f"{what} {value!r} must be a number")
    _require(0.0 <= value < 1.0, f"{what} {value} must be in [0, 1)")


@dataclass(frozen=True)
class StageSpec:
    """A run of `repeats` identical blocks; only the first one strides.

    `expand` is the MBConv expansion ratio (hidden = round(in * expand)); for a
    ResNet bottleneck it is the ResNet "expansion" (hidden = out // expand).
    `se` is the squeeze-excite ratio of the block *input* channels (0 = no SE).
    `skip` allows the identity shortcut where shapes permit it.
    """

    block: str
    repeats: int
    kernel: int
    stride: int
    out: int
    expand: float = 1
    se: float = 0.0
    skip: bool = True

    def __post_init__(self) -> None:
        what = f"stage {self.block!r}"
        try:
            kind = get_block(self.block) if isinstance(self.block, str) else get_block(repr(self.block))
        except RegistryError as exc:
            raise SpecError(str(exc)) from None
        _check_int(self.repeats, 1, f"{what}: repeats")
        _check_kernel(self.kernel, what)
        _check_stride(self.stride, what)
        _check_int(self.out, 1, f"{what}: output channels", " (channels < 1 make no layer)")
        _require(isinstance(self.expand, (int, float)) and not isinstance(self.expand, bool),
                 f"{what}: expand {self.expand!r} must be a number")
        _require(self.expand >= 1, f"{what}: expand ratio {self.expand} must be >= 1")
        if kind.expand == "none":
            _require(self.expand == 1,
                     f"{what}: expand must be 1 for a {self.block} block (it has no expansion layer)")
        if kind.expand == "bottleneck":
            _require(self.out // self.expand >= 1,
                     f"{what}: out {self.out} // expand {self.expand} leaves no bottleneck channels")
        _check_fraction(self.se, f"{what}: SE ratio")
        _require(isinstance(self.skip, bool), f"{what}: skip {self.skip!r} must be true or false")

    def to_string(self) -> str:
        """The one-line form, e.g. ``mbconv_r2_k3_s2_e6_c24_se0.25``."""
        parts = [self.block, f"r{self.repeats}", f"k{self.kernel}", f"s{self.stride}",
                 f"e{_fmt(self.expand)}", f"c{self.out}"]
        if self.se:
            parts.append(f"se{_fmt(self.se)}")
        if not self.skip:
            parts.append("noskip")
        return "_".join(parts)

    def canonical(self) -> "StageSpec":
        """The one spelling of this stage's network: ``ds`` is an MBConv with expand 1
        (no expansion conv), so it is written as ``mbconv_..._e1``."""
        same_as = get_block(self.block).same_as
        return dataclasses.replace(self, block=same_as) if same_as else self

    @classmethod
    def from_string(cls, text: str) -> "StageSpec":
        """Parse the one-line form written by `to_string`."""
        tokens = text.strip().split("_")
        _require(len(tokens) >= 2, f"stage string {text!r} is not of the form "
                                   "block_r2_k3_s2_e6_c24[_se0.25][_noskip]")
        fields: dict[str, Any] = {"block": tokens[0]}
        prefixes = (("se", "se", float), ("r", "repeats", int), ("k", "kernel", int),
                    ("s", "stride", int), ("e", "expand", float), ("c", "out", int))
        for token in tokens[1:]:
            if token == "noskip":
                fields["skip"] = False
                continue
            for prefix, name, kind in prefixes:
                if token.startswith(prefix) and _is_number(token[len(prefix):]):
                    fields[name] = _parse_number(token[len(prefix):], kind, text)
                    break
            else:
                raise SpecError(f"stage string {text!r}: unknown token {token!r}; "
                                "expected r<repeats>, k<kernel>, s<stride>, e<expand>, "
                                "c<channels>, se<ratio> or noskip")
        missing = [n for n in ("repeats", "kernel", "stride", "out") if n not in fields]
        _require(not missing, f"stage string {text!r} lacks {', '.join(missing)}")
        return cls(**fields)


@dataclass(frozen=True)
class StemSpec:
    """The stem conv: output channels, kernel, stride, and ResNet's optional max-pool."""
    channels: int
    kernel: int = 3
    stride: int = 2
    pool: bool = False  # ResNet's 3x3 stride-2 max-pool after the stem conv

    def __post_init__(self) -> None:
        _check_int(self.channels, 1, "stem: channels")
        _check_kernel(self.kernel, "stem")
        _check_stride(self.stride, "stem")
        _require(isinstance(self.pool, bool), f"stem: pool {self.pool!r} must be true or false")


@dataclass(frozen=True)
class HeadSpec:
    """The final 1x1 conv's width (0: none, as in ResNet)."""
    channels: int  # width of the final 1x1 conv; 0 = none (ResNet pools the last stage)

    def __post_init__(self) -> None:
        _check_int(self.channels, 0, "head: channels", " (0 means no head conv)")


@dataclass(frozen=True)
class BatchNormSpec:
    """BatchNorm epsilon and momentum (PyTorch convention) of every layer."""
    eps: float = 1e-3
    momentum: float = 0.01  # PyTorch convention: TF's 0.99 decay is 0.01 here

    def __post_init__(self) -> None:
        _require(isinstance(self.eps, (int, float)) and self.eps > 0,
                 f"bn: eps {self.eps!r} must be a positive number")
        _require(isinstance(self.momentum, (int, float)) and 0 < self.momentum <= 1,
                 f"bn: momentum {self.momentum!r} must be in (0, 1] (PyTorch convention)")


@dataclass(frozen=True)
class ArchSpec:
    """One immutable network: resolution, classes, stem, stages, head, activation, dropout,
    stochastic depth and BatchNorm settings. Built, counted, trained, scaled and saved as is."""
    name: str
    resolution: int
    num_classes: int
    stem: StemSpec
    stages: tuple[StageSpec, ...]
    head: HeadSpec
    activation: str = "silu"
    dropout: float = 0.2
    drop_path: float = 0.2  # stochastic-depth rate of the last block; grows linearly from 0
    bn: BatchNormSpec = field(default_factory=BatchNormSpec)
    in_channels: int = 3

    def __post_init__(self) -> None:
        _require(isinstance(self.name, str) and self.name.strip() != "",
                 "name must be a non-empty string")
        _check_int(self.resolution, 8, "resolution")
        _require(self.resolution <= MAX_RESOLUTION, f"resolution {self.resolution:,} is above the "
                 f"{MAX_RESOLUTION:,} px a spec may have; use a smaller resolution (or --phi)")
        _check_int(self.num_classes, 1, "num_classes")
        _check_int(self.in_channels, 1, "in_channels")
        _require(isinstance(self.stages, tuple) and len(self.stages) > 0,
                 "stages must be a non-empty list")
        _require(self.activation in ACTIVATIONS,
                 f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        _check_fraction(self.dropout, "dropout")
        _check_fraction(self.drop_path, "drop_path")
        _require(self.blocks <= MAX_BLOCKS, f"{self.blocks:,} blocks are more than the {MAX_BLOCKS:,} a "
                 "spec may have (EfficientNet-B7 has 55); use fewer stages or repeats (or a smaller --phi)")
        widest = max([self.stem.channels, self.head.channels, *(s.out for s in self.stages)])
        _require(widest <= MAX_CHANNELS, f"{widest:,} channels are more than the {MAX_CHANNELS:,} a layer "
                 "may have; use narrower stages (or a smaller --phi)")

    @property
    def blocks(self) -> int:
        """Total number of blocks over all stages."""
        return sum(s.repeats for s in self.stages)

    def arch_string(self) -> str:
        """Stages as one line, as written (``ds`` and ``mbconv e1`` stay as spelled)."""
        return " ".join(s.to_string() for s in self.stages)

    def canonical_string(self) -> str:
        """One string per network: canonical stages plus everything else that changes the
        computation (resolution, stem, head, activation, classes). Two specs that build the
        same network have the same string; it keys duplicate detection and grid twins."""
        stem = self.stem
        return (" ".join(s.canonical().to_string() for s in self.stages)
                + f" | r{self.resolution} stem{stem.channels}k{stem.kernel}s{stem.stride}"
                + f"{'p' if stem.pool else ''} head{self.head.channels} {self.activation}"
                + f" in{self.in_channels} cls{self.num_classes}")

    def replace(self, **changes: Any) -> "ArchSpec":
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    # ---- plain-data and YAML forms -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, stages as one-line strings."""
        return {
            "name": self.name,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "activation": self.activation,
            "dropout": self.dropout,
            "drop_path": self.drop_path,
            "bn": dataclasses.asdict(self.bn),
            "stem": dataclasses.asdict(self.stem),
            "stages": [s.to_string() for s in self.stages],
            "head": dataclasses.asdict(self.head),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ArchSpec":
        """A spec from a mapping (stages as strings or mappings); one-line errors name the key."""
        _require(isinstance(data, Mapping), f"a spec must be a mapping, got {type(data).__name__}")
        kwargs = _fields_of(cls, data, "spec")
        for key, sub in (("stem", StemSpec), ("head", HeadSpec), ("bn", BatchNormSpec)):
            if key in kwargs:
                _require(isinstance(kwargs[key], Mapping), f"{key} must be a mapping")
                kwargs[key] = _build(sub, _fields_of(sub, kwargs[key], key), key)
        stages = kwargs.get("stages")
        _require(isinstance(stages, (list, tuple)), "stages must be a list")
        kwargs["stages"] = tuple(_stage_from(item, i) for i, item in enumerate(stages))
        return _build(cls, kwargs, "spec")

    def to_yaml(self) -> str:
        """The YAML form."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> "ArchSpec":
        """A spec from YAML text."""
        try:
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            raise SpecError(f"not valid YAML: {exc}".splitlines()[0]) from exc
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        """Write the YAML form to `path` (parents created); return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text(path, self.to_yaml())

    @classmethod
    def load(cls, path: str | Path) -> "ArchSpec":
        """A spec from a YAML file; errors name the file."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise SpecError(f"cannot read spec file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise SpecError(f"{path} is not a YAML spec (not UTF-8 text); give a spec file or a "
                            "preset name") from None
        try:
            return cls.from_yaml(text)
        except SpecError as exc:
            raise SpecError(f"{path}: {exc}") from exc


def _stage_from(item: Any, index: int) -> StageSpec:
    where = f"stages[{index}]"
    try:
        if isinstance(item, str):
            return StageSpec.from_string(item)
        _require(isinstance(item, Mapping), "must be a stage string or a mapping")
        return StageSpec(**_fields_of(StageSpec, item, where))
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from exc


def _fields_of(cls: type, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise SpecError(f"unknown key {unknown[0]!r} in {where}; allowed keys: {', '.join(allowed)}")
    return dict(data)


def _build(cls: type, kwargs: dict[str, Any], where: str) -> Any:
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in kwargs]
    if missing:
        raise SpecError(f"{where} lacks required key {missing[0]!r}")
    return cls(**kwargs)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_number(text: str, kind: type, whole: str) -> Any:
    value = float(text)
    if kind is int:
        _require(value.is_integer(), f"stage string {whole!r}: {text} must be an integer")
        return int(value)
    return int(value) if value.is_integer() else value


def block_configs(spec: ArchSpec) -> Iterator[tuple[int, StageSpec, int, int, int]]:
    """(global block index, stage, in channels, out channels, stride) for every block.

    Only a stage's first block takes its stride and channel change; the rest repeat at
    stride 1 on the stage's output width.

    Args:
        spec: the architecture.
    """
    cin = spec.stem.channels
    index = 0
    for stage in spec.stages:
        for i in range(stage.repeats):
            yield index, stage, cin, stage.out, stage.stride if i == 0 else 1
            cin = stage.out
            index += 1
