"""Precise BatchNorm (as in pycls): recompute running statistics before evaluating.

With momentum 0.01, BatchNorm's running statistics need thousands of steps to forget
their initial values and to catch up with the weights; a short run (or EMA weights,
whose statistics were never measured) is evaluated with stale ones. Here every
BatchNorm's running mean and variance are replaced by the exact statistics of its input
over a fixed set of training images, with the rest of the network in eval mode.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

BatchNorm = nn.BatchNorm2d  # (1d/3d share its running-statistics API)


class _Moments:
    """Pooled per-channel mean and variance of a BN's inputs, batch by batch (Chan et al.'s
    parallel update, so that unequal batches and the spread between batch means count)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None  # sum of squared deviations from the mean

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].detach()
        dims = [d for d in range(x.dim()) if d != 1]
        count = x.numel() // x.shape[1]
        # per-batch moments in float32 (no float64 copy of a large activation), pooled in float64
        var, mean = torch.var_mean(x.float(), dim=dims, correction=0)
        mean, m2 = mean.double(), var.double() * count
        if self.mean is None:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta.square() * (self.count * count / total)
        self.count = total

    def unbiased_var(self) -> torch.Tensor:
        # PyTorch keeps the unbiased variance in running_var
        """The pooled variance with Bessel's correction, as BatchNorm keeps it."""
        return self.m2 / max(self.count - 1, 1)


def _bn_layers(model: nn.Module) -> list[BatchNorm]:
    return [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and m.track_running_stats
            and m.running_mean is not None]


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, images: torch.Tensor,
                       normalize: Callable[[torch.Tensor], torch.Tensor],
                       batch_size: int = 256, max_images: int = 512) -> int:
    """Replace every BatchNorm's running statistics by those of its input over `images`.

    The forward passes run with only the BatchNorm layers in train mode (each normalises
    by its batch statistics, as in training) and everything else in eval mode, so dropout
    and stochastic depth play no part. Each layer's new running_mean / running_var are
    the exact mean and unbiased variance over all the images' pixels (pooled across
    batches, not an average of per-batch variances). Every module's training flag and
    every BatchNorm's momentum are restored afterwards.

    Args:
        model: the network (e.g. the EMA copy used for evaluation), any device or
            memory format; it must not be a torch.compile wrapper that hides its modules.
        images: uint8 N x C x H x W on the model's device, at the model's resolution; a
            fixed subset of the training split, so that the result is deterministic.
        normalize: uint8 batch -> float model input (the trainer's Normalize).
        batch_size: images per forward pass.
        max_images: only the first `max_images` images are used.

    Returns:
        The number of images used (0, with nothing changed, when the model has no
        BatchNorm with running statistics).
    """
    _check_args(images, batch_size, max_images)
    bns = _bn_layers(model)
    if not bns:
        return 0
    images = images[:max_images]
    modes = {m: m.training for m in model.modules()}
    saved = {bn: (bn.momentum, _stats(bn)) for bn in bns}
    moments = {bn: _Moments() for bn in bns}
    hooks = [bn.register_forward_pre_hook(moments[bn]) for bn in bns]
    done = False
    try:
        model.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average during the pass; overwritten below
            bn.train()
        for start in range(0, len(images), batch_size):
            model(normalize(images[start:start + batch_size]))
        done = True
    finally:
        for h in hooks:
            h.remove()
        for bn, (momentum, stats) in saved.items():
            bn.momentum = momentum
            _set_or_restore(bn, moments[bn] if done else None, stats)
        for module, training in modes.items():
            module.training = training
    return len(images)


def _check_args(images: torch.Tensor, batch_size: int, max_images: int) -> None:
    if images.dim() != 4 or len(images) == 0:
        raise ValueError("images must be a non-empty N x C x H x W tensor "
                         f"(got shape {tuple(images.shape)})")
    if batch_size < 1 or max_images < 1:
        raise ValueError(f"batch_size ({batch_size}) and max_images ({max_images}) must be positive")


def _set_or_restore(bn: BatchNorm, moments: "_Moments | None", stats: tuple[torch.Tensor, ...]) -> None:
    if moments is not None and moments.mean is not None:
        bn.running_mean.copy_(moments.mean.to(bn.running_mean.dtype))
        bn.running_var.copy_(moments.unbiased_var().to(bn.running_var.dtype))
    else:  # the pass failed, or this layer was never reached: keep what it had
        _restore(bn, stats)


def _stats(bn: BatchNorm) -> tuple[torch.Tensor, ...]:
    return tuple(t.clone() for t in (bn.running_mean, bn.running_var, bn.num_batches_tracked))


def _restore(bn: BatchNorm, stats: tuple[torch.Tensor, ...]) -> None:
    for t, saved in zip((bn.running_mean, bn.running_var, bn.num_batches_tracked), stats):
        t.copy_(saved)
