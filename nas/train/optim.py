"""Optimizers and learning-rate schedules that a CUDA graph can capture.

Each optimizer updates with `torch._foreach_*` kernels and takes the learning rate
as a device tensor, so one captured step replays correctly at every lr: no host
values change between steps. The same code runs eagerly on the CPU.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from ..recipe import Recipe


def lr_schedule(recipe: Recipe, steps_per_epoch: int) -> torch.Tensor:
    """Learning rate at every optimizer step of the run (float32, on the CPU).

    A linear warm-up over `recipe.warmup_epochs` reaches `recipe.lr`, then the schedule
    decays it: "cosine" to zero at the end, "exponential" as a staircase (times
    `decay_rate` every `decay_epochs`), anything else stays constant. "onecycle" rises
    linearly to the peak over the warm-up (a quarter of the run when unset) and falls
    linearly to zero at the last step. The whole table is computed once, so the training
    loop only indexes it (no host arithmetic between captured steps).

    Args:
        recipe: the training recipe; its epochs, lr, schedule, warmup_epochs,
            decay_rate and decay_epochs are used.
        steps_per_epoch: optimizer steps per epoch.

    Returns:
        1-D tensor of recipe.epochs * steps_per_epoch learning rates.
    """
    total = recipe.epochs * steps_per_epoch
    steps = torch.arange(total, dtype=torch.float64)
    epoch = steps / steps_per_epoch
    peak = recipe.lr
    if recipe.schedule == "onecycle":  # linear up to the peak, linear down to zero
        warm_steps = (recipe.warmup_epochs or 0.25 * recipe.epochs) * steps_per_epoch
        up = (steps + 1) / warm_steps
        down = (total - steps) / (total - warm_steps)
        return (peak * torch.minimum(up, down).clamp(max=1.0)).float()
    warm = recipe.warmup_epochs
    ramp = ((epoch + 1.0 / steps_per_epoch) / warm).clamp(max=1.0) if warm > 0 else torch.ones_like(epoch)
    if recipe.schedule == "cosine":
        progress = ((epoch - warm) / max(recipe.epochs - warm, 1e-9)).clamp(0.0, 1.0)
        lr = peak * 0.5 * (1.0 + torch.cos(math.pi * progress))
    elif recipe.schedule == "exponential":  # the paper's: 0.97 every 2.4 epochs, staircase
        lr = peak * recipe.decay_rate ** torch.floor((epoch - warm).clamp(min=0) / recipe.decay_epochs)
    else:
        lr = torch.full_like(epoch, peak)
    return (lr * ramp).float()


def param_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, not decayed): BatchNorm weights and all biases get no weight decay.

    Parameters with at most one dimension (biases, BN weights) go to the second list;
    frozen parameters (requires_grad False) are left out.

    Args:
        model: the network whose parameters are split.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return decay, no_decay


class FusedOptimizer:
    """Base: holds parameter groups and per-parameter state tensors.

    Subclasses name their state tensors in `state_names` and implement `step`. All state
    is updated in place, so a CUDA graph that captured a step stays valid after `reset`
    and `load_state_dict`.

    Args:
        model: the network to optimise (see `param_groups` for which tensors are decayed).
        recipe: its weight_decay and momentum are used.
    """

    state_names: tuple[str, ...] = ()

    def __init__(self, model: nn.Module, recipe: Recipe) -> None:
        self.decay, self.no_decay = param_groups(model)
        self.params = self.decay + self.no_decay
        self.weight_decay = recipe.weight_decay
        self.momentum = recipe.momentum
        self.state: dict[str, list[torch.Tensor]] = {
            name: [torch.zeros_like(p) for p in self.params] for name in self.state_names}
        self.steps = torch.zeros((), dtype=torch.float32, device=self.params[0].device)
        self.reset()

    def reset(self) -> None:
        """Back to the initial state, in place (captured graphs keep their pointers)."""
        for tensors in self.state.values():
            torch._foreach_zero_(tensors)
        self.steps.zero_()

    def _grads(self) -> list[torch.Tensor]:
        grads = [p.grad for p in self.params]
        if self.weight_decay and self.decay:  # L2 on conv/FC weights, as in the reference code
            torch._foreach_add_(grads[:len(self.decay)], self.decay, alpha=self.weight_decay)
        return grads

    def step(self, lr: torch.Tensor) -> None:
        """Apply one update to every parameter from its current gradient (subclasses implement it).

        Args:
            lr: the learning rate as a 0-d tensor on the parameters' device.
        """
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Drop the gradients (set them to None) before the next backward pass."""
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        """Copies of the step count and every state tensor, for a checkpoint."""
        return {"steps": self.steps.clone(), **{k: [t.clone() for t in v] for k, v in self.state.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Copy a saved state back in place (captured graphs keep their pointers).

        Args:
            state: what `state_dict` returned; its tensors may live on another device.
        """
        self.steps.copy_(state["steps"])
        for name, tensors in self.state.items():
            torch._foreach_copy_(tensors, [t.to(tensors[0].device) for t in state[name]])


class SGDNesterov(FusedOptimizer):
    """SGD with Nesterov momentum and L2 weight decay on conv/FC weights (ndim > 1)."""

    state_names = ("momentum_buffer",)

    def step(self, lr: torch.Tensor) -> None:
        """One Nesterov step: buf = momentum * buf + g, then p -= lr * (g + momentum * buf).

        Args:
            lr: the learning rate as a 0-d tensor on the parameters' device.
        """
        grads = self._grads()
        bufs = self.state["momentum_buffer"]
        torch._foreach_mul_(bufs, self.momentum)
        torch._foreach_add_(bufs, grads)
        torch._foreach_add_(grads, bufs, alpha=self.momentum)
        torch._foreach_mul_(grads, lr)
        torch._foreach_sub_(self.params, grads)
        self.steps.add_(1)


class RMSPropTF(FusedOptimizer):
    """TensorFlow's RMSProp (EfficientNet's optimizer): eps inside the square root,
    lr inside the momentum buffer, mean square initialised to one."""

    state_names = ("mean_square", "momentum_buffer")
    decay_rho = 0.9
    eps = 1e-3

    def reset(self) -> None:
        """Zero the state, then set the mean square to one, as TensorFlow initialises it."""
        super().reset()
        torch._foreach_add_(self.state["mean_square"], 1.0)

    def step(self, lr: torch.Tensor) -> None:
        """One step: ms = rho * ms + (1 - rho) * g^2; mom = momentum * mom + lr * g / sqrt(ms + eps);
        p -= mom.

        Args:
            lr: the learning rate as a 0-d tensor on the parameters' device.
        """
        grads = self._grads()
        ms, mom = self.state["mean_square"], self.state["momentum_buffer"]
        torch._foreach_mul_(ms, self.decay_rho)
        torch._foreach_addcmul_(ms, grads, grads, value=1.0 - self.decay_rho)
        denom = torch._foreach_add(ms, self.eps)
        torch._foreach_sqrt_(denom)
        update = torch._foreach_div(grads, denom)
        torch._foreach_mul_(update, lr)
        torch._foreach_mul_(mom, self.momentum)
        torch._foreach_add_(mom, update)
        torch._foreach_sub_(self.params, mom)
        self.steps.add_(1)


class AdamW(FusedOptimizer):
    """Adam with decoupled weight decay: conv/FC weights shrink by lr * weight_decay each step,
    apart from the gradient (no L2 term in the moments)."""

    state_names = ("exp_avg", "exp_avg_sq")
    betas = (0.9, 0.999)
    eps = 1e-8

    def step(self, lr: torch.Tensor) -> None:
        """One bias-corrected Adam step, after the decoupled decay of the decayed parameters.

        Args:
            lr: the learning rate as a 0-d tensor on the parameters' device.
        """
        grads = [p.grad for p in self.params]  # decoupled decay below, not L2
        b1, b2 = self.betas
        self.steps.add_(1)
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        torch._foreach_lerp_(m, grads, 1.0 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - b2)
        if self.weight_decay and self.decay:
            torch._foreach_mul_(self.decay, 1.0 - lr * self.weight_decay)
        bias1 = 1.0 - torch.pow(b1, self.steps)
        bias2_sqrt = torch.sqrt(1.0 - torch.pow(b2, self.steps))
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(m, denom)
        torch._foreach_mul_(update, lr / bias1)
        torch._foreach_sub_(self.params, update)


OPTIMIZERS = {"sgd": SGDNesterov, "rmsprop": RMSPropTF, "adamw": AdamW}


def make_optimizer(model: nn.Module, recipe: Recipe) -> FusedOptimizer:
    """The recipe's optimizer (sgd, rmsprop or adamw) over `model`'s parameters.

    Args:
        model: the network to train.
        recipe: its optimizer names the class; weight_decay and momentum configure it.
    """
    return OPTIMIZERS[recipe.optimizer](model, recipe)


class WeightEMA:
    """Exponential moving average of the weights (and a copy of the BN statistics).

    Floating-point buffers (BatchNorm running statistics) are averaged along with the
    parameters, so `copy_to` yields a consistent model for evaluation.

    Args:
        model: the network being trained.
        decay: the largest per-step decay (e.g. 0.9999); early steps use less (see `update`).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.source = [p for p in model.parameters()] + [b for b in model.buffers() if b.is_floating_point()]
        self.shadow = [t.detach().clone() for t in self.source]
        self.updates = torch.zeros((), device=self.shadow[0].device)

    def update(self) -> None:
        """Move the average towards the current weights: shadow += (1 - d) * (weights - shadow),
        with TensorFlow's warm-up d = min(decay, (1 + n) / (10 + n)) after n updates."""
        # TF's warm-up: the effective decay is min(decay, (1 + n) / (10 + n))
        self.updates.add_(1)
        decay = torch.clamp((1.0 + self.updates) / (10.0 + self.updates), max=self.decay)
        step = torch._foreach_sub([t.detach() for t in self.source], self.shadow)
        torch._foreach_mul_(step, 1.0 - decay)  # shadow += (1 - decay) * (source - shadow)
        torch._foreach_add_(self.shadow, step)

    def reset(self) -> None:
        """Restart the average from the current weights, with the update count at zero."""
        torch._foreach_copy_(self.shadow, [t.detach() for t in self.source])
        self.updates.zero_()

    def copy_to(self, model: nn.Module) -> None:
        """Write the averaged weights and BN statistics into `model` (e.g. to evaluate them).

        Args:
            model: a network of the same architecture as the one averaged.
        """
        targets = [p for p in model.parameters()] + [b for b in model.buffers() if b.is_floating_point()]
        with torch.no_grad():
            torch._foreach_copy_(targets, self.shadow)

    def state_dict(self) -> dict:
        """Copies of the averaged tensors and the update count, for a checkpoint."""
        return {"shadow": [t.clone() for t in self.shadow], "updates": self.updates.clone()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a saved average in place.

        Args:
            state: what `state_dict` returned; its tensors may live on another device.
        """
        torch._foreach_copy_(self.shadow, [t.to(self.shadow[0].device) for t in state["shadow"]])
        self.updates.copy_(state["updates"])
