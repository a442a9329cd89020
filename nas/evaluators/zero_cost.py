"""Zero-cost proxies: a score of the untrained net from one or two minibatches.

Every proxy here is computed at initialisation (the builder's init, seeded), on minibatches
of the *training* split (never validation or test), with dropout and stochastic depth off
so the score is deterministic for a seed; BatchNorm runs in training mode (batch
statistics), as in the authors' code, except where a proxy says otherwise. Only the
weights of Conv2d and Linear layers are scored (depthwise and SE 1x1 convs included; BN
affine parameters and biases not), following Abdelfattah et al., "Zero-Cost Proxies for
Lightweight NAS", ICLR 2021.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import SqueezeExcite
from ..builder import build
from ..data import Dataset
from ..spec import ArchSpec
from ..train.augment import Normalize
from ..train.runtime import resolve_device
from .base import EvalScore, fit_to

Batch = tuple[torch.Tensor, torch.Tensor]          # normalised images, labels
ProxyFn = Callable[[nn.Module, Sequence[Batch]], tuple[float, dict]]
FEATURE_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.LeakyReLU)


def scored_layers(model: nn.Module) -> list[nn.Module]:
    """The Conv2d and Linear layers whose weights a proxy scores, in network order."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def init_model(spec: ArchSpec, seed: int, device: torch.device) -> nn.Module:
    """The untrained net with the builder's initialisation drawn from `seed` (the global RNG
    is left as it was), dropout and stochastic depth off, in training mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(spec, drop_path=0.0, dropout=0.0)
    return model.to(device).train()


def train_batches(dataset: Dataset, resolution: int, device: torch.device, count: int, size: int,
                  seed: int) -> list[Batch]:
    """`count` minibatches of `size` training images drawn without replacement by `seed`,
    normalised with the training split's statistics (smaller when the split is small)."""
    data = dataset.staged("train", device, resolution)
    size = max(1, min(size, len(data) // max(count, 1)))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    normalize = Normalize(*dataset.mean_std(), channels_last=False).to(device)
    batches = []
    for i in range(count):
        idx = order[i * size:(i + 1) * size].to(device)
        batches.append((normalize(data.images[idx]), data.labels[idx]))
    return batches


def _bypass_batchnorm(model: nn.Module) -> None:
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                parent.add_module(name, nn.Identity())


def synflow(model: nn.Module, _batches: Sequence[Batch]) -> tuple[float, dict]:
    """log of SynFlow, Tanaka et al., "Pruning neural networks without any data by iteratively
    conserving synaptic flow", NeurIPS 2020: R = 1ᵀ(∏|θ|)1 and score Σ|θ ⊙ ∂R/∂θ|.

    As in Abdelfattah et al.'s code: every tensor of the net replaced by its absolute value,
    the net in float64, an all-ones input of one image, R the sum of the logits, BatchNorm
    bypassed (one constant image would be normalised to ~0 by batch statistics). No data
    and no labels are read. The score grows exponentially with depth, so its natural log is
    reported (0 -> -inf: no path carries signal). SiLU and the SE sigmoid gate are not
    linear on positive inputs, so unlike a ReLU net the net is not linearised; the score is
    still a data-free measure of signal flow, as the authors' code computes it."""
    net = copy.deepcopy(model).double()
    _bypass_batchnorm(net)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            tensor.abs_()
    spec = model.spec
    x = torch.ones(1, spec.in_channels, spec.resolution, spec.resolution, dtype=torch.float64,
                   device=next(net.parameters()).device)
    net(x).sum().backward()
    total = sum(float((m.weight.detach() * m.weight.grad).abs().sum()) for m in scored_layers(net)
                if m.weight.grad is not None)
    if math.isnan(total):
        return -math.inf, {"raw": "nan"}
    return (math.log(total) if total > 0 else -math.inf), {"raw": total}


def _feature_activations(model: nn.Module) -> list[nn.Module]:
    inside_se = {id(m) for se in model.modules() if isinstance(se, SqueezeExcite) for m in se.modules()}
    return [m for m in model.modules() if isinstance(m, FEATURE_ACTIVATIONS) and id(m) not in inside_se]


@torch.no_grad()
def naswot(model: nn.Module, batches: Sequence[Batch]) -> tuple[float, dict]:
    """NASWOT, Mellor et al., "Neural Architecture Search without Training", ICML 2021:
    log|det K| with K = Σ_layers c cᵀ + (1−c)(1−c)ᵀ, c the binary code 1[x > 0] of every
    unit of a layer for each image of one batch (no labels).

    Our adaptation to SiLU nets (not the authors'; unverified as a predictor): the authors
    hook modules named *ReLU*, which finds nothing in a SiLU net. We hook every ReLU,
    ReLU6, SiLU, Hardswish and LeakyReLU; since sign(SiLU(x)) = sign(hswish(x)) = sign(x),
    the code read from the output equals the pre-activation's (the activations run in place,
    so the output is what a hook can see). Activations inside squeeze-excite modules are
    left out: they act on one globally pooled vector per image, a gate on the feature path
    rather than a partition of the input space, and counting them would let the SE option
    add code bits by itself. -inf when K is singular (two images share every code)."""
    x, _ = batches[0]
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device)

    def hook(_module, _inputs, output):
        code = (output > 0).flatten(1).double()
        kernel.add_(code @ code.T).add_((1 - code) @ (1 - code).T)

    handles = [m.register_forward_hook(hook) for m in _feature_activations(model)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return (float(logdet) if sign > 0 else -math.inf), {"hooked": len(handles), "batch": n}


def _loss_gradients(model: nn.Module, batch: Batch) -> list[torch.Tensor | None]:
    """∂CE/∂W of every scored layer on one batch (None for a layer the loss does not reach)."""
    model.zero_grad(set_to_none=True)
    x, y = batch
    F.cross_entropy(model(x), y).backward()
    return [None if m.weight.grad is None else m.weight.grad.detach().clone() for m in scored_layers(model)]


def grad_norm(model: nn.Module, batches: Sequence[Batch]) -> tuple[float, dict]:
    """grad_norm as in Abdelfattah et al., ICLR 2021: Σ_layers ‖∂L/∂W‖_F of the cross-entropy
    on one batch (per-layer norms summed, not one global norm)."""
    grads = _loss_gradients(model, batches[0])
    return sum(float(g.norm()) for g in grads if g is not None), {}


def snip(model: nn.Module, batches: Sequence[Batch]) -> tuple[float, dict]:
    """SNIP, Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity",
    ICLR 2019, summed over weights as in Abdelfattah et al., ICLR 2021: Σ|W ⊙ ∂L/∂W| of the
    cross-entropy on one batch."""
    grads = _loss_gradients(model, batches[0])
    return sum(float((m.weight.detach() * g).abs().sum())
               for m, g in zip(scored_layers(model), grads) if g is not None), {}


def zico(model: nn.Module, batches: Sequence[Batch]) -> tuple[float, dict]:
    """ZiCo, Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
    Gradients", ICLR 2023: Σ_layers log Σ_w mean|g_w| / std(g_w), over the cross-entropy
    gradients of (by default) 2 batches; weights whose gradient does not vary (std 0) are
    dropped, and so is a layer with nothing left, as in the authors' code."""
    per_batch = [_loss_gradients(model, b) for b in batches]
    total, layers = 0.0, 0
    for grads in zip(*per_batch):
        if any(g is None for g in grads):
            continue
        g = torch.stack(grads)
        std = g.std(0, unbiased=False)
        varying = std != 0
        ratio = float((g.abs().mean(0)[varying] / std[varying]).sum())
        if ratio > 0:
            total, layers = total + math.log(ratio), layers + 1
    return total, {"layers": layers}


@dataclass(frozen=True)
class ZeroCostEvaluator:
    """A zero-cost proxy as an Evaluator.

    Args:
        name: the registry name.
        fn: the proxy, (initialised model, training minibatches) -> (value, details).
        batches: minibatches it reads (0: none, the proxy is data-free).
        batch_size: images per minibatch.
        device: where the net runs.
    """

    name: str
    fn: ProxyFn
    batches: int = 1
    batch_size: int = 64
    device: str = "cpu"

    def score(self, spec: ArchSpec, dataset: Dataset, split: str = "val", seed: int = 0) -> EvalScore:
        """The proxy of `spec` initialised from `seed` on minibatches drawn by `seed` from the
        training split (`split` is not read: a proxy never looks at held-out data)."""
        start = time.perf_counter()
        device = resolve_device(self.device)
        spec = fit_to(spec, dataset)
        model = init_model(spec, seed, device)
        data = train_batches(dataset, spec.resolution, device, self.batches, self.batch_size, seed)
        value, details = self.fn(model, data)
        return EvalScore(float(value), time.perf_counter() - start,
                         {**details, "batches": self.batches, "batch_size": self.batch_size})
