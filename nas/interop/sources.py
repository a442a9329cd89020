"""Foreign model zoos we read weights from: torchvision and timm, built with random weights."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..train.checkpoint import load_failure
from . import InteropError

# source name -> our preset with the same tensors in the same order
TORCHVISION_PRESETS = {
    **{f"efficientnet_b{i}": f"efficientnet-b{i}" for i in range(8)},
    "mobilenet_v2": "mobilenet-v2",
    "mnasnet1_0": "mnasnet-b1",
    "resnet18": "resnet-18",
    "resnet50": "resnet-50",
}
TIMM_PRESETS = {
    **{f"efficientnet_b{i}": f"efficientnet-b{i}" for i in range(4)},
    "mobilenetv2_100": "mobilenet-v2",
}
ZOOS = {"torchvision": TORCHVISION_PRESETS, "timm": TIMM_PRESETS}


@dataclass(frozen=True)
class Source:
    """A model of a foreign zoo, e.g. ``torchvision:efficientnet_b0``.

    Attributes:
        zoo: torchvision or timm.
        name: the model's name in that zoo.
    """

    zoo: str
    name: str

    def __str__(self) -> str:
        return f"{self.zoo}:{self.name}"

    def default_preset(self) -> str:
        """Our preset for this model; refused when there is none (pass --spec then)."""
        preset = ZOOS[self.zoo].get(self.name)
        if preset is None:
            raise InteropError(f"no default preset for {self}; pass --spec PRESET_OR_YAML "
                               f"(defaults exist for {self.zoo}: {', '.join(ZOOS[self.zoo])})")
        return preset

    def build(self, num_classes: int, device: str = "cpu") -> nn.Module:
        """The source model with random weights and `num_classes` outputs, in eval mode.

        Args:
            num_classes: outputs of its classifier.
            device: "meta" builds only the structure (no memory, no initialisation),
                for loading a state_dict with ``assign=True``.
        """
        try:
            if self.zoo == "torchvision":
                import torchvision

                with torch.device(device):
                    model = torchvision.models.get_model(self.name, weights=None,
                                                         num_classes=num_classes)
            else:
                import timm

                with torch.device(device):
                    model = timm.create_model(self.name, pretrained=False, num_classes=num_classes)
        except Exception as exc:  # each zoo raises its own kinds on bad arguments
            raise InteropError(f"cannot build {self}: {str(exc).splitlines()[0]}") from exc
        return model.eval()


def parse_source(text: str) -> Source:
    """``torchvision:NAME`` or ``timm:NAME`` -> Source, refusing unknown zoos and models.

    Args:
        text: the --from value.
    """
    zoo, sep, name = text.partition(":")
    if not sep or zoo not in ZOOS or not name:
        raise InteropError(f"--from {text!r} is not torchvision:NAME or timm:NAME "
                           "(e.g. torchvision:efficientnet_b0, timm:mobilenetv2_100)")
    if name not in _known_models(zoo):
        raise InteropError(f"{zoo} has no model {name!r}; models with a default preset: "
                           f"{', '.join(ZOOS[zoo])}")
    return Source(zoo, name)


def _known_models(zoo: str) -> set[str]:
    if zoo == "torchvision":
        import torchvision

        return set(torchvision.models.list_models())
    try:
        import timm
    except ImportError as exc:
        raise InteropError("timm is not installed; pip install 'nas-toolkit[interop]'") from exc
    return set(timm.list_models())


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a .pt/.pth file: the dict itself, or one under 'state_dict'/'model'.

    Args:
        path: the weights file; read with ``weights_only=True`` (no code runs).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of non-checkpoints
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise InteropError(f"no weights file at {path}") from exc
    except Exception as exc:  # unpickling errors come in many kinds
        raise InteropError(f"cannot read {path}: {load_failure(exc)}; give "
                           "a .pt/.pth file of tensors (a state_dict)") from None
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not data or not all(
            isinstance(v, torch.Tensor) for v in data.values()):
        raise InteropError(f"{path} holds no state_dict (a dict of tensors, or one under "
                           "'state_dict' or 'model')")
    return {k.removeprefix("module."): v for k, v in data.items()}


def classifier_classes(state: dict[str, torch.Tensor]) -> Optional[int]:
    """Outputs of the last fully-connected layer (the last 2-D tensor), None without one.

    Args:
        state: a state_dict, in its module order.
    """
    matrices = [v for v in state.values() if v.ndim == 2]
    return int(matrices[-1].shape[0]) if matrices else None


def batchnorm_of(model: nn.Module) -> tuple[float, Optional[float]]:
    """(eps, momentum) of the first BatchNorm layer of `model`.

    Args:
        model: a built source model.

    Raises:
        InteropError when the model has no BatchNorm layer.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return float(m.eps), m.momentum
    raise InteropError(f"{type(model).__name__} has no BatchNorm layer to take eps from")
