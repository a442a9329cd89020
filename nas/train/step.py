"""The training step: forward, loss, backward, update, EMA and running statistics.

On a GPU the whole step is captured once in a CUDA graph and replayed: at 32 px a
MBConv net's step is bound by kernel launches, not arithmetic. Everything the step
reads or writes lives in static device tensors (batch, labels, lr table, step
counter, loss and accuracy sums), so a replay needs no host work at all. On the
CPU the same function runs eagerly.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .augment import Normalize
from .optim import FusedOptimizer, WeightEMA


class TrainStep:
    """Forward, loss, backward, update, EMA and statistics over static device tensors, so the
    step can be captured in a CUDA graph and replayed; run eagerly on a CPU."""
    def __init__(self, model: nn.Module, optimizer: FusedOptimizer, ema: Optional[WeightEMA],
                 normalize: Normalize, lrs: torch.Tensor, label_smoothing: float,
                 amp_dtype: Optional[torch.dtype], batch_shape: tuple[int, ...],
                 device: torch.device) -> None:
        self.model, self.optimizer, self.ema, self.normalize = model, optimizer, ema, normalize
        self.lrs = lrs.to(device)
        self.label_smoothing = label_smoothing
        self.amp_dtype = amp_dtype
        self.device = device
        self.x = torch.zeros(batch_shape, dtype=torch.uint8, device=device)
        self.y = torch.zeros(batch_shape[0], dtype=torch.long, device=device)
        self.step_index = torch.zeros((), dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.graph: Optional[torch.cuda.CUDAGraph] = None

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        # the weight-cast cache must be off while a graph is captured
        return torch.autocast(self.device.type, dtype=self.amp_dtype, cache_enabled=False)

    def _step(self) -> None:
        with self._autocast():
            logits = self.model(self.normalize(self.x))
        loss = F.cross_entropy(logits.float(), self.y, label_smoothing=self.label_smoothing)
        loss.backward()
        with torch.no_grad():
            # a gather, not `lrs[step]`: indexing by a tensor would sync, which a graph forbids
            self.optimizer.step(self.lrs.index_select(0, self.step_index.view(1)).view(()))
            if self.ema is not None:
                self.ema.update()
            self.loss_sum.add_(loss.detach())
            self.correct.add_((logits.argmax(1) == self.y).sum())
            self.step_index.add_(1)

    def run(self, x: Optional[torch.Tensor] = None, y: Optional[torch.Tensor] = None) -> None:
        """One step on (x, y); pass None to use what was already written into self.x/self.y."""
        if x is not None:
            self.x.copy_(x)
            self.y.copy_(y)
        if self.graph is not None:
            self.graph.replay()
        else:
            self.optimizer.zero_grad()
            self._step()

    def take_stats(self) -> tuple[float, int]:
        """(summed loss, correct predictions) since the last call; synchronises."""
        loss, correct = float(self.loss_sum), int(self.correct)
        self.loss_sum.zero_()
        self.correct.zero_()
        return loss, correct

    def capture(self, warmup_steps: int = 3) -> None:
        """Capture the step in a CUDA graph. Warm-up steps run on the real state, which is
        snapshotted first and restored in place afterwards, so training is unchanged."""
        snapshot = self._snapshot()
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(warmup_steps):
                    self.optimizer.zero_grad()
                    self._step()
            torch.cuda.current_stream(self.device).wait_stream(side)
            self.optimizer.zero_grad()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._step()
            self.graph = graph
        finally:
            self._restore(snapshot)

    def _snapshot(self) -> dict:
        return {
            "model": [t.detach().clone() for t in self.model.state_dict().values()],
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "counters": [t.clone() for t in (self.step_index, self.loss_sum, self.correct)],
        }

    def _restore(self, snapshot: dict) -> None:
        with torch.no_grad():
            for target, saved in zip(self.model.state_dict().values(), snapshot["model"]):
                target.copy_(saved)
            self.optimizer.load_state_dict(snapshot["optimizer"])
            if self.ema is not None:
                self.ema.load_state_dict(snapshot["ema"])
            for target, saved in zip((self.step_index, self.loss_sum, self.correct), snapshot["counters"]):
                target.copy_(saved)
