"""Batched augmentation and preprocessing of uint8 images on the training device."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.dataset import resize  # noqa: F401  (re-exported: the trainer's resize)


def crop_flip(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding, and a random horizontal flip, per image, in one gather."""
    n, c, h, w = images.shape
    device = images.device
    if padding > 0:
        padded = F.pad(images, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    else:
        padded = images
        dy = dx = torch.zeros(n, dtype=torch.long, device=device)
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    cols = torch.arange(w, device=device)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]       # n x w
    rows = torch.arange(h, device=device) + dy[:, None]                        # n x h
    index_n = torch.arange(n, device=device)[:, None, None, None]
    index_c = torch.arange(c, device=device)[None, :, None, None]
    return padded[index_n, index_c, rows[:, None, :, None], cols[:, None, None, :]]


def auto_augment(images: torch.Tensor, policy: str, generator: torch.Generator,
                 group: int = 16) -> torch.Tensor:
    """RandAugment / TrivialAugment from torchvision, one random op per group of `group`
    images (torchvision draws one op per call; per-image calls would be too slow on a GPU)."""
    from torchvision.transforms import v2

    transform = v2.RandAugment() if policy == "randaugment" else v2.TrivialAugmentWide()
    # torchvision draws from the global RNG: seed it from our generator for reproducibility
    seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator, device=generator.device))
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        out = torch.cat([transform(images[i:i + group]) for i in range(0, images.shape[0], group)])
    finally:
        torch.random.set_rng_state(state)
    return out


def augment_epoch(images: torch.Tensor, policy: str, generator: torch.Generator,
                  chunk: int = 8192) -> torch.Tensor:
    """Augment a whole epoch's worth of images at once (few, large kernels)."""
    if policy == "none":
        return images
    padding = max(1, round(images.shape[-1] / 8))  # 4 px at 32 px, as in the CIFAR recipes
    parts = []
    for start in range(0, images.shape[0], chunk):
        part = images[start:start + chunk]
        if policy in ("randaugment", "trivialaugment"):
            part = auto_augment(part, policy, generator)
        parts.append(crop_flip(part, padding, generator))
    return torch.cat(parts) if len(parts) > 1 else parts[0]


class Normalize(torch.nn.Module):
    """uint8 -> float, (x / 255 - mean) / std, optionally in channels_last layout."""

    def __init__(self, mean: list[float], std: list[float], channels_last: bool) -> None:
        super().__init__()
        self.register_buffer("scale", 1.0 / (255.0 * torch.tensor(std).view(1, -1, 1, 1)))
        self.register_buffer("shift", -torch.tensor(mean).view(1, -1, 1, 1) / torch.tensor(std).view(1, -1, 1, 1))
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> normalised floats in the model's layout."""
        x = torch.addcmul(self.shift, x.float(), self.scale)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
