"""train(spec, dataset, recipe) -> TrainResult: the one trainer behind every number."""
from __future__ import annotations

import copy
import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from ..builder import build
from ..counting import analytic_count
from ..data import Dataset, Split
from ..data.dataset import VAL_SEED
from ..errors import NasError
from ..progress import Progress, fmt_seconds
from ..recipe import Recipe
from ..spec import ArchSpec
from .augment import Normalize, augment_epoch, resize
from .optim import WeightEMA, lr_schedule, make_optimizer
from .runtime import Runtime, amp_dtype, configure, resolve_device, use_channels_last
from .step import TrainStep

CHECKPOINT = "checkpoint.pt"
EpochCallback = Callable[[dict], None]


class TrainError(NasError):
    """A run that cannot start or continue (bad resume, out of memory, ...)."""


@dataclass
class TrainResult:
    status: str                       # completed | diverged
    spec_name: str
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    val_acc: Optional[float] = None   # last evaluated epoch
    test_acc: Optional[float] = None  # only when asked for
    train_seconds: float = 0.0        # training steps only
    setup_seconds: float = 0.0        # model build, data staging, graph capture
    wall_seconds: float = 0.0
    images_seen: int = 0
    images_per_s: float = 0.0
    macs: int = 0
    params: int = 0
    resolution: int = 0
    device: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def staged_split(dataset: Dataset, split: str, fraction: float, device: torch.device,
            resolution: int) -> Split:
    """The split on the device at the training resolution; memoised on the dataset."""
    key = (split, fraction, str(device), resolution)
    if key not in dataset._device_copies:
        data = dataset.split(split)
        images, labels = data.images, data.labels
        if fraction < 1.0:
            g = torch.Generator().manual_seed(VAL_SEED + 1)  # one fixed subset for every run
            keep = torch.randperm(len(labels), generator=g)[:max(1, int(len(labels) * fraction))].sort().values
            images, labels = images[keep], labels[keep]
        images = resize(images.to(device, non_blocking=True), resolution)
        if len(dataset._device_copies) >= 6:
            dataset._device_copies.pop(next(iter(dataset._device_copies)))
        dataset._device_copies[key] = Split(images, labels.to(device))
    return dataset._device_copies[key]


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: Split, normalize: Normalize,
             amp: Optional[torch.dtype], batch_size: int) -> tuple[float, float]:
    """(accuracy, mean loss) of `model` on a staged split."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=data.labels.device)
    loss = torch.zeros((), device=data.labels.device)
    autocast = (torch.autocast(data.labels.device.type, dtype=amp) if amp is not None
                else torch.autocast(data.labels.device.type, enabled=False))
    for start in range(0, len(data), batch_size):
        x, y = data.images[start:start + batch_size], data.labels[start:start + batch_size]
        with autocast:
            logits = model(normalize(x)).float()
        correct += (logits.argmax(1) == y).sum()
        loss += F.cross_entropy(logits, y, reduction="sum")
    model.train()
    return int(correct) / len(data), float(loss) / len(data)


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_metrics(out_dir: Path, history: list[dict]) -> None:
    if not history:
        return
    with (out_dir / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def train(spec: ArchSpec, dataset: Dataset, recipe: Recipe, *, runtime: Runtime = Runtime(),
          out_dir: Optional[str | Path] = None, resume: bool = False,
          callback: Optional[EpochCallback] = None, evaluate_test: bool = False,
          log: Optional[Callable[[str], None]] = None,
          init_weights: Optional[dict] = None) -> TrainResult:
    """Train `spec` on `dataset` with `recipe`.

    Each epoch is evaluated on the validation split (every `recipe.eval_every`),
    reported to `callback` (which may raise, e.g. optuna.TrialPruned, to stop) and,
    with `out_dir`, checkpointed so that `resume=True` continues an interrupted run.
    """
    wall_start = time.perf_counter()
    device = resolve_device(runtime.device)
    configure(runtime, device)
    quiet = runtime.quiet
    say = log or (lambda line: None if quiet else print(line, flush=True))
    if spec.num_classes != dataset.num_classes or spec.in_channels != dataset.channels:
        spec = spec.replace(num_classes=dataset.num_classes, in_channels=dataset.channels)
    out = Path(out_dir) if out_dir is not None else None
    state = _prepare_out_dir(out, spec, recipe, resume)

    torch.manual_seed(recipe.seed)
    data = staged_split(dataset, recipe.train_split, recipe.train_fraction, device, spec.resolution)
    val = staged_split(dataset, "val", 1.0, device, spec.resolution)
    batch = min(recipe.batch_size, len(data))
    steps_per_epoch = len(data) // batch  # static shapes: the last partial batch is dropped
    amp = amp_dtype(recipe.precision, device)
    channels_last = use_channels_last(runtime, device)

    model = build(spec, drop_path=recipe.drop_path, dropout=recipe.dropout).to(device)
    if init_weights is not None:  # fine-tuning (nas.interop.finetune): absent tensors keep their init
        model.load_state_dict({**model.state_dict(), **init_weights})
    if recipe.bn_momentum is not None:
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = recipe.bn_momentum
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    mean, std = dataset.mean_std()
    normalize = Normalize(mean, std, channels_last).to(device)
    optimizer = make_optimizer(model, recipe)
    ema = WeightEMA(model, recipe.ema_decay) if recipe.ema_decay > 0 else None
    forward_model = torch.compile(model) if runtime.compile else model
    stepper = TrainStep(forward_model, optimizer, ema, normalize, lr_schedule(recipe, steps_per_epoch),
                        recipe.label_smoothing, amp, (batch, dataset.channels, spec.resolution,
                                                      spec.resolution), device)
    eval_model = copy.deepcopy(model) if ema is not None else model  # holds EMA weights for eval
    history: list[dict] = []
    start_epoch = 0
    if state is not None:
        start_epoch, history = _load_state(state, model, optimizer, ema, stepper)
        say(f"resuming {spec.name} after epoch {start_epoch}/{recipe.epochs}")

    count = analytic_count(spec)
    result = TrainResult("completed", spec.name, start_epoch, history, macs=count.macs,
                         params=count.params, resolution=spec.resolution, device=str(device))
    try:
        if device.type == "cuda" and runtime.cuda_graphs and not runtime.compile:
            try:
                stepper.capture()
            except torch.cuda.OutOfMemoryError:
                raise
            except RuntimeError as exc:  # keep training: eager is slower, not wrong
                say(f"warning: CUDA graph capture failed ({str(exc).splitlines()[0]}); "
                    "training eagerly")
                stepper.optimizer.zero_grad()
        result.setup_seconds = time.perf_counter() - wall_start
        if not quiet:
            say(f"training {spec.name} ({count.params:,} params, {count.macs / 1e6:.1f} M MACs at "
                f"{spec.resolution}px) on {dataset.name} [{len(data)} images, batch {batch}] for "
                f"{recipe.epochs} epochs on {device}{' with CUDA graphs' if stepper.graph else ''}")
        progress = Progress(recipe.epochs, start_epoch, say)
        for epoch in range(start_epoch, recipe.epochs):
            metrics = _run_epoch(epoch, recipe, data, stepper, steps_per_epoch, batch, device)
            if not math.isfinite(metrics["train_loss"]):
                result.status = "diverged"
                say(f"epoch {epoch + 1}: training loss is {metrics['train_loss']}; stopping "
                    "(diverged: lower the learning rate)")
                history.append(metrics)
                break
            if (epoch + 1) % recipe.eval_every == 0 or epoch + 1 == recipe.epochs:
                if ema is not None:
                    ema.copy_to(eval_model)
                metrics["val_acc"], metrics["val_loss"] = evaluate(
                    eval_model, val, normalize, amp, runtime.eval_batch_size)
            history.append(metrics)
            result.epochs_run = epoch + 1
            progress.advance()
            say(_epoch_line(metrics, recipe.epochs, progress,
                            "val(seen)" if recipe.train_split == "train+val" else "val"))
            if out is not None:
                _save_checkpoint(out, spec, recipe, model, eval_model, optimizer, ema, stepper, history)
            if callback is not None:
                callback(metrics)
    except torch.cuda.OutOfMemoryError as exc:
        raise TrainError(f"CUDA out of memory training {spec.name} at {spec.resolution}px with "
                         f"batch size {batch}; lower batch_size in the recipe") from exc

    result.history = history
    result.val_acc = next((h["val_acc"] for h in reversed(history) if h["val_acc"] is not None), None)
    result.train_seconds = sum(h["seconds"] for h in history)
    result.images_seen = len(history) * steps_per_epoch * batch
    result.images_per_s = result.images_seen / max(result.train_seconds, 1e-9)
    if result.status == "completed" and evaluate_test:
        if ema is not None:
            ema.copy_to(eval_model)
        test = staged_split(dataset, "test", 1.0, device, spec.resolution)
        result.test_acc, _ = evaluate(eval_model, test, normalize, amp, runtime.eval_batch_size)
        say(f"test accuracy {result.test_acc:.4f}")
    result.wall_seconds = time.perf_counter() - wall_start
    if out is not None:
        (out / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result


def _run_epoch(epoch: int, recipe: Recipe, data: Split, stepper: TrainStep, steps: int, batch: int,
               device: torch.device) -> dict:
    start = time.perf_counter()
    # data order and augmentation depend only on (seed, epoch): a resumed run replays them
    gen = torch.Generator(device).manual_seed(recipe.seed * 1_000_003 + epoch)
    images = augment_epoch(data.images, recipe.augment, gen)
    order = torch.randperm(len(data), generator=gen, device=device)
    for i in range(steps):
        idx = order[i * batch:(i + 1) * batch]
        torch.index_select(images, 0, idx, out=stepper.x)
        torch.index_select(data.labels, 0, idx, out=stepper.y)
        stepper.run()
    loss_sum, correct = stepper.take_stats()  # synchronises
    seconds = time.perf_counter() - start
    lr = float(stepper.lrs[min(int(stepper.step_index), len(stepper.lrs)) - 1])
    return {"epoch": epoch + 1, "train_loss": loss_sum / steps, "train_acc": correct / (steps * batch),
            "val_acc": None, "val_loss": None, "lr": lr, "seconds": seconds,
            "images_per_s": steps * batch / seconds}


def _epoch_line(m: dict, epochs: int, progress: Progress, val_label: str) -> str:
    val = f"  {val_label} {m['val_acc'] * 100:5.2f}%" if m["val_acc"] is not None else ""
    return (f"epoch {m['epoch']}/{epochs}  loss {m['train_loss']:.4f}  train {m['train_acc'] * 100:5.2f}%"
            f"{val}  lr {m['lr']:.4g}  {m['images_per_s']:,.0f} img/s  {progress.suffix()}")


def _prepare_out_dir(out: Optional[Path], spec: ArchSpec, recipe: Recipe, resume: bool) -> Optional[dict]:
    if out is None:
        if resume:
            raise TrainError("--resume needs --out DIR (the run directory to continue)")
        return None
    ckpt = out / CHECKPOINT
    if ckpt.exists():
        if not resume:
            raise TrainError(f"{out} already holds a run ({CHECKPOINT}); pass --resume to continue "
                             "it, or choose another --out")
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state["spec"] != spec.to_dict() or state["recipe"] != recipe.to_dict():
            raise TrainError(f"{out} holds a run of another spec or recipe; resume with the same "
                             "ones, or choose another --out")
        return state
    if resume:
        raise TrainError(f"nothing to resume: {ckpt} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    spec.save(out / "spec.yaml")
    (out / "recipe.yaml").write_text(recipe.to_yaml())
    return None


def _save_checkpoint(out: Path, spec: ArchSpec, recipe: Recipe, model, eval_model, optimizer, ema,
                     stepper: TrainStep, history: list[dict]) -> None:
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    _save_atomic({
        "format": 1, "spec": spec.to_dict(), "recipe": recipe.to_dict(), "epoch": len(history),
        "history": history, "model": model.state_dict(), "weights": eval_model.state_dict(),
        "optimizer": optimizer.state_dict(), "ema": ema.state_dict() if ema is not None else None,
        "step_index": int(stepper.step_index), "rng": rng,
    }, out / CHECKPOINT)
    _write_metrics(out, history)


def _load_state(state: dict, model, optimizer, ema, stepper: TrainStep) -> tuple[int, list[dict]]:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if ema is not None and state["ema"] is not None:
        ema.load_state_dict(state["ema"])
    stepper.step_index.fill_(state["step_index"])
    torch.set_rng_state(state["rng"]["cpu"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["epoch"], list(state["history"])


def load_checkpoint(path: str | Path) -> tuple[ArchSpec, dict]:
    """(spec, raw checkpoint) from a run directory or a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise TrainError(f"no checkpoint at {path}; give a run directory made by `nas train` or "
                         f"its {CHECKPOINT}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    return ArchSpec.from_dict(state["spec"]), state
