"""Train a supernet: the sandwich rule with in-place distillation (BigNAS), resumable.

Each step runs the largest subnet on the labels (the recipe's label smoothing), then the
smallest and `random` uniformly sampled subnets on the largest's soft predictions
(in-place distillation), accumulates the gradients and takes one optimizer step. Data,
augmentation and the learning-rate schedule are the shared trainer's (uint8 images
resident on the device, one augmentation pass per epoch, channels_last on a CPU); the
data order and the sampled subnets depend only on (seed, epoch), so a resumed run
replays the epochs it lost.
"""
from __future__ import annotations

import csv
import io
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..atomic import write_text
from ..data import Dataset
from ..progress import fmt_seconds
from ..recipe import Recipe
from ..search.space import SearchSpace
from ..train.augment import Normalize, augment_epoch
from ..runfolder.fingerprint import data_fingerprint
from ..train.checkpoint import save_atomic
from ..train.optim import lr_schedule, param_groups
from ..train.runtime import Runtime, configure, resolve_device, use_channels_last
from .judge import judge_inputs, judge_loaded, load_state
from .modules import Supernet
from .plan import SupernetError, SupernetPlan, describe, plan_supernet

STATE = "supernet.pt"
PROGRESS_EVERY = 25  # steps between progress lines within an epoch
FORMAT = 1


@dataclass
class SupernetRun:
    """What a finished (or resumed-and-finished) supernet training produced."""

    out: Path
    epochs: int
    history: list[dict]
    train_seconds: float


def fingerprint(space: SearchSpace, plan: SupernetPlan, recipe: Recipe, dataset: Dataset, sampled: int) -> dict:
    """What makes two supernet runs the same: the space's choices, recipe, data, sandwich size."""
    return {"space": {"name": space.name, "stages": [repr(s) for s in space.stages], "base": space.base.to_dict()},
            "plan": [repr(s) for s in plan.stages], "recipe": recipe.to_dict(), "data": data_fingerprint(dataset),
            "sandwich_random": sampled}


def _difference(saved: dict, wanted: dict) -> Optional[str]:
    keys = [k for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
    return f"{', '.join(keys)} differ" if keys else None


def _optimizer(model: Supernet, recipe: Recipe) -> torch.optim.Optimizer:
    decay, no_decay = param_groups(model)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    raise SupernetError(f"recipe {recipe.name} uses optimizer {recipe.optimizer}; a supernet trains with "
                        "sgd or adamw (parameters a step leaves unused must keep no gradient)")


def _build(plan: SupernetPlan, recipe: Recipe, classes: int, device: torch.device,
           channels_last: bool) -> Supernet:
    """The supernet on `device` with the recipe's dropout (None: the space's) and BN momentum."""
    dropout = plan.base.dropout if recipe.dropout is None else recipe.dropout
    model = Supernet(plan, classes, dropout).to(device)
    if recipe.bn_momentum is not None:
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = recipe.bn_momentum
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _prepare(out: Path, fp: dict, resume: bool) -> Optional[dict]:
    path = out / STATE
    if path.exists():
        if not resume:
            raise SupernetError(f"{out} already holds a supernet ({STATE}); pass --resume to continue it "
                                "or choose another --out")
        state = load_state(path)
        diff = _difference(state.get("fingerprint", {}), fp)
        if diff:
            raise SupernetError(f"{out} holds a supernet of another configuration ({diff}); resume with the same "
                                "space, recipe and data, or choose another --out")
        return state
    if resume:
        raise SupernetError(f"nothing to resume: {path} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    return None


def train_supernet(space: SearchSpace, dataset: Dataset, recipe: Recipe, out: str | Path,
                   runtime: Runtime = Runtime(), resume: bool = False, sampled: int = 2,
                   log: Callable[[str], None] = print) -> SupernetRun:
    """Train (or resume) the supernet of `space` on `dataset` with `recipe`; write `out`.

    Args:
        space: the search space; refused in one line if the supernet cannot cover it.
        dataset: the data (train split for training, val for the per-epoch report).
        recipe: epochs, batch, optimizer (sgd or adamw), lr schedule, label smoothing,
            augmentation, BN momentum, dropout and seed.
        out: the run folder: supernet.pt (weights, optimizer, history), supernet.json,
            history.csv and space.yaml (so the folder is judged anywhere).
        runtime: device and speed switches (CUDA graphs and compile are not used here).
        resume: continue the run in `out` (same configuration only).
        sampled: random subnets per step besides the largest and the smallest.
        log: where progress lines go.
    """
    plan = plan_supernet(space)
    out = Path(out)
    fp = fingerprint(space, plan, recipe, dataset, sampled)
    state = _prepare(out, fp, resume)
    device = resolve_device(runtime.device)
    configure(runtime, device)
    torch.manual_seed(recipe.seed)
    channels_last = use_channels_last(runtime, device)
    model = _build(plan, recipe, dataset.num_classes, device, channels_last)
    optimizer = _optimizer(model, recipe)
    data = dataset.staged(recipe.train_split, device, space.base.resolution, recipe.train_fraction)
    batch = min(recipe.batch_size, len(data))
    steps = len(data) // batch
    lrs = lr_schedule(recipe, steps)
    normalize = Normalize(*dataset.mean_std(), channels_last).to(device)
    history: list[dict] = []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = list(state["history"])
        log(f"resuming the supernet in {out} after epoch {len(history)}/{recipe.epochs}")
    _write_meta(out, space, recipe, dataset, plan, sampled)
    loop = _Loop(model, optimizer, data, normalize, lrs, recipe, plan, plan.largest(dataset.num_classes),
                 plan.smallest(dataset.num_classes), sampled, steps, batch, dataset.num_classes, device, log)
    log(f"supernet of {space.name}: {sum(p.numel() for p in model.parameters()):,} weights; each step trains "
        f"the largest ({loop.teacher.arch_string()}), the smallest and {sampled} random subnets; "
        f"{steps} steps of {batch} an epoch, {recipe.epochs} epochs")
    log(describe(plan))
    start_epoch = len(history)
    for epoch in range(start_epoch, recipe.epochs):
        row = loop.epoch(epoch)
        row.update(_report(model, plan, dataset, device, (loop.teacher, loop.smallest)))
        history.append(row)
        save_atomic({"format": FORMAT, "fingerprint": fp, "epoch": epoch + 1, "history": history,
                     "model": model.state_dict(), "optimizer": optimizer.state_dict()}, out / STATE)
        _write_history(out, history)
        done = sum(h["seconds"] for h in history[start_epoch:])
        eta = done / (epoch + 1 - start_epoch) * (recipe.epochs - epoch - 1)
        log(f"epoch {epoch + 1}/{recipe.epochs}  loss {row['loss']:.3f}  distill {row['distill']:.3f}  "
            f"val largest {row['val_largest'] * 100:.2f}%  smallest {row['val_smallest'] * 100:.2f}%  "
            f"{row['seconds']:.0f}s  ETA {fmt_seconds(eta)}")
    return SupernetRun(out, len(history), history, sum(h["seconds"] for h in history))


@dataclass
class _Loop:
    """What every sandwich-rule step reads."""

    model: Supernet
    optimizer: torch.optim.Optimizer
    data: object            # the staged training Split
    normalize: Normalize
    lrs: torch.Tensor
    recipe: Recipe
    plan: SupernetPlan
    teacher: object         # ArchSpec of the largest subnet
    smallest: object        # ArchSpec of the smallest subnet
    sampled: int
    steps: int
    batch: int
    classes: int
    device: torch.device
    say: Callable[[str], None]

    def epoch(self, epoch: int) -> dict:
        """One pass over the training split; the epoch's mean losses, lr, seconds and images."""
        start = time.perf_counter()
        self.model.train()
        gen = torch.Generator(self.device).manual_seed(self.recipe.seed * 1_000_003 + epoch)
        rng = random.Random(self.recipe.seed * 7_919 + epoch)
        images = augment_epoch(self.data.images, self.recipe.augment, gen)
        order = torch.randperm(len(self.data), generator=gen, device=self.device)
        loss_sum = distill_sum = 0.0
        for i in range(self.steps):
            idx = order[i * self.batch:(i + 1) * self.batch]
            loss, distill = self.step(self.normalize(images[idx]), self.data.labels[idx], epoch * self.steps + i, rng)
            if not math.isfinite(loss):
                raise SupernetError(f"the supernet diverged in epoch {epoch + 1} (loss {loss}); lower the "
                                    "recipe's lr (--lr)")
            loss_sum, distill_sum = loss_sum + loss, distill_sum + distill
            if (i + 1) % PROGRESS_EVERY == 0 and i + 1 < self.steps:
                spent = time.perf_counter() - start
                self.say(f"  epoch {epoch + 1} step {i + 1}/{self.steps}  loss {loss_sum / (i + 1):.3f}  "
                         f"epoch ETA {fmt_seconds(spent / (i + 1) * (self.steps - i - 1))}")
        last = min((epoch + 1) * self.steps, len(self.lrs)) - 1
        return {"epoch": epoch + 1, "loss": loss_sum / self.steps, "distill": distill_sum / self.steps,
                "lr": float(self.lrs[last]), "seconds": time.perf_counter() - start,
                "images": self.steps * self.batch * (2 + self.sampled)}

    def step(self, x: torch.Tensor, y: torch.Tensor, index: int, rng: random.Random) -> tuple[float, float]:
        """The sandwich rule on one batch: (the largest's loss, the students' mean distillation loss)."""
        for group in self.optimizer.param_groups:
            group["lr"] = float(self.lrs[index])
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(x, self.teacher)
        loss = F.cross_entropy(logits, y, label_smoothing=self.recipe.label_smoothing)
        loss.backward()
        soft = logits.detach().softmax(1)
        distill = 0.0
        students = [self.smallest] + [self.plan.random(rng, self.classes) for _ in range(self.sampled)]
        for spec in students:
            kd = F.cross_entropy(self.model(x, spec), soft)  # in-place distillation: soft targets
            kd.backward()
            distill += float(kd.detach()) / len(students)
        loss_value = float(loss.detach())
        if math.isfinite(loss_value):
            self.optimizer.step()
        return loss_value, distill


def _report(model: Supernet, plan: SupernetPlan, dataset: Dataset, device, ends) -> dict:
    """Validation accuracy of the largest and smallest subnets (inherited weights, precise BN)."""
    teacher, smallest = ends
    bn, val, normalize = judge_inputs(dataset, device, plan.base.resolution)
    return {"val_largest": judge_loaded(model, teacher, bn, val, normalize)[0],
            "val_smallest": judge_loaded(model, smallest, bn, val, normalize)[0]}


def _write_meta(out: Path, space: SearchSpace, recipe: Recipe, dataset: Dataset, plan: SupernetPlan,
                sampled: int) -> None:
    if space.path is not None:
        write_text(out / "space.yaml", Path(space.path).read_text())
    meta = {"space": space.name, "dataset": dataset.name, "data": data_fingerprint(dataset),
            "num_classes": dataset.num_classes, "recipe": recipe.to_dict(), "sandwich_random": sampled,
            "largest": plan.largest(dataset.num_classes).arch_string(),
            "smallest": plan.smallest(dataset.num_classes).arch_string()}
    write_text(out / "supernet.json", json.dumps(meta, indent=2) + "\n")


def _write_history(out: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text(out / "history.csv", buf.getvalue())
