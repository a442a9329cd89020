"""Named architecture presets, stored as spec YAML files under nas/presets/.

Hand-written files hold the base nets; the EfficientNet B1-B7 and MobileNetV2
width variants are derived from their base by `scale_spec` and written out by
`python -m nas.presets --write` (a test checks the files equal the derivation).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple

from .rounding import round_resolution, scale_spec
from .spec import ArchSpec, SpecError
from .yamlfile import named_file

PRESET_DIR = Path(__file__).with_name("presets")


class Coefficients(NamedTuple):
    """One row of the released EfficientNet table.

    Attributes:
        width: channel multiplier.
        depth: multiplier of every stage's repeats.
        resolution: input size in pixels.
        dropout: classifier dropout rate.
    """

    width: float
    depth: float
    resolution: int
    dropout: float


# The released EfficientNet table (official TF code). It is *not* (1.2^phi, 1.1^phi,
# 1.15^phi): depth and width were hand-rounded, e.g. B1 keeps width 1.0.
EFFICIENTNET = {
    "b0": Coefficients(1.0, 1.0, 224, 0.2),
    "b1": Coefficients(1.0, 1.1, 240, 0.2),
    "b2": Coefficients(1.1, 1.2, 260, 0.3),
    "b3": Coefficients(1.2, 1.4, 300, 0.3),
    "b4": Coefficients(1.4, 1.8, 380, 0.4),
    "b5": Coefficients(1.6, 2.2, 456, 0.4),
    "b6": Coefficients(1.8, 2.6, 528, 0.5),
    "b7": Coefficients(2.0, 3.1, 600, 0.5),
}

MOBILENET_V2_WIDTHS = (0.35, 0.5, 0.75, 1.4)


def efficientnet_variant(base: ArchSpec, key: str, name: str | None = None) -> ArchSpec:
    """Apply the official coefficients of `key` (b1..b7) to an EfficientNet base.

    At a 224-px base the official resolution is used as is; another base resolution
    (a CIFAR base, say) is scaled by the same ratio and rounded to a multiple of 8.

    Args:
        base: an EfficientNet-shaped spec (B0, or a variant of it).
        key: b0..b7, a key of EFFICIENTNET.
        name: the result's name (default: efficientnet-<key>).
    """
    c = EFFICIENTNET[key]
    resolution = (c.resolution if base.resolution == 224
                  else round_resolution(base.resolution * c.resolution / 224))
    return scale_spec(base, depth=c.depth, width=c.width, resolution=resolution,
                      dropout=c.dropout, name=name or f"efficientnet-{key}")


def mobilenet_v2_variant(base: ArchSpec, width: float) -> ArchSpec:
    """torchvision's width multiplier: the head keeps 1280 unless width > 1.

    Args:
        base: the MobileNetV2 spec at width 1.
        width: the channel multiplier (e.g. 0.35, 0.5, 0.75, 1.4); also names the result.
    """
    return scale_spec(base, width=width, head_width=max(1.0, width),
                      name=f"{base.name}-{width:g}")


def derived_presets() -> dict[str, ArchSpec]:
    """The presets derived from a base file, by name: EfficientNet B1-B7 from B0 and the
    MobileNetV2 width variants. `python -m nas.presets --write` stores them as YAML."""
    b0 = ArchSpec.load(PRESET_DIR / "efficientnet-b0.yaml")
    mbv2 = ArchSpec.load(PRESET_DIR / "mobilenet-v2.yaml")
    derived = {f"efficientnet-{k}": efficientnet_variant(b0, k) for k in EFFICIENTNET if k != "b0"}
    for width in MOBILENET_V2_WIDTHS:
        spec = mobilenet_v2_variant(mbv2, width)
        derived[spec.name] = spec
    return derived


def preset_names() -> list[str]:
    """Names of the stored presets (the YAML file stems under nas/presets/), sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> ArchSpec:
    """The stored preset called `name`.

    Args:
        name: a preset name (see `preset_names`); not a path.

    Raises:
        SpecError listing the known presets when there is none of that name.
    """
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")
    return ArchSpec.load(path)


def resolve_spec(spec_or_preset: str) -> ArchSpec:
    """A YAML path or a preset name -> ArchSpec, with a one-line error otherwise.

    Args:
        spec_or_preset: a path to a spec YAML file, or a preset name such as efficientnet-b0.
    """
    return ArchSpec.load(named_file(spec_or_preset, PRESET_DIR, "preset", SpecError))


def _write_derived() -> None:
    for name, spec in derived_presets().items():
        header = f"# Derived from its base by `python -m nas.presets --write`; do not edit.\n"
        (PRESET_DIR / f"{name}.yaml").write_text(header + spec.to_yaml())
        print(f"wrote {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="(re)write the derived preset files")
    if parser.parse_args().write:
        _write_derived()
