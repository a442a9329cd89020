"""train(spec, dataset, recipe) -> TrainResult: the one trainer behind every number.

A run is four parts, each its own function: `setup` (model, optimizer, staged data,
resume state), `run_epoch` (one pass over the training split), `evaluate_epoch`
(validation, on EMA weights when the recipe keeps them) and `finish` (test split,
result.json). `train` strings them together with checkpoints and the callback.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..builder import build
from ..counting import analytic_count
from ..data import Dataset, Split
from ..outcomes import pack
from ..progress import Progress
from ..atomic import write_text
from ..recipe import Recipe
from ..spec import ArchSpec
from .augment import Normalize, augment_epoch
from ..runfolder.fingerprint import run_fingerprint
from .checkpoint import (CHECKPOINT, FORMAT, TrainError, load_checkpoint, prepare_out_dir, save_atomic,
                         write_metrics)
from .evaluation import evaluate, evaluate_outcomes
from .optim import WeightEMA, lr_schedule, make_optimizer
from .runtime import Runtime, amp_dtype, configure, resolve_device, use_channels_last
from .step import TrainStep

__all__ = ["CHECKPOINT", "TrainError", "TrainResult", "evaluate", "load_checkpoint", "train"]

EpochCallback = Callable[[dict], None]


@dataclass
class TrainResult:
    """What a run produced; written as result.json next to the checkpoint."""

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
    test_images: int = 0
    fingerprint: dict = field(default_factory=dict)
    val_outcomes: Optional[str] = None   # which validation images the last evaluation got right
    test_outcomes: Optional[str] = None  # which test images it got right ("N:BASE64", nas.outcomes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (result.json)."""
        return asdict(self)


@dataclass
class Run:
    """Everything one training run holds between its parts."""

    spec: ArchSpec
    recipe: Recipe
    dataset: Dataset
    runtime: Runtime
    device: torch.device
    data: Split
    val: Split
    batch: int
    steps_per_epoch: int
    amp: Optional[torch.dtype]
    model: torch.nn.Module
    eval_model: torch.nn.Module       # the model itself, or a copy holding the EMA weights
    ema: Optional[WeightEMA]
    normalize: Normalize
    stepper: TrainStep
    out: Optional[Path]
    say: Callable[[str], None]
    fingerprint: dict
    history: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    evaluated_at: int = -1            # training step at which eval_model was last refreshed
    outcomes: dict = field(default_factory=dict)  # split -> packed per-image flags of its last evaluation


def check_fits(spec: ArchSpec, dataset: Dataset) -> None:
    """Refuse a spec whose classifier or input channels do not match the data set."""
    if spec.num_classes != dataset.num_classes or spec.in_channels != dataset.channels:
        raise TrainError(
            f"{spec.name} has {spec.num_classes} classes and {spec.in_channels} input channels, "
            f"{dataset.name} has {dataset.num_classes} and {dataset.channels}; adapt the spec first "
            "(the commands do: spec.replace(num_classes=..., in_channels=...))")


def _build_model(spec: ArchSpec, recipe: Recipe, device: torch.device, channels_last: bool,
                 init_weights: Optional[dict]) -> torch.nn.Module:
    model = build(spec, drop_path=recipe.drop_path, dropout=recipe.dropout)
    if init_weights is not None:  # fine-tuning (nas.interop.finetune): absent tensors keep their init
        model.load_state_dict({**model.state_dict(), **init_weights})
    model = model.to(device)
    if recipe.bn_momentum is not None:
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = recipe.bn_momentum
    return model.to(memory_format=torch.channels_last) if channels_last else model


def setup(spec: ArchSpec, dataset: Dataset, recipe: Recipe, runtime: Runtime,
          out_dir: Optional[str | Path], resume: bool, log: Optional[Callable[[str], None]],
          init_weights: Optional[dict] = None) -> Run:
    """Stage data, build model/optimizer/step, and load the resume state if asked."""
    check_fits(spec, dataset)
    device = resolve_device(runtime.device)
    configure(runtime, device)
    say = log or (lambda line: None if runtime.quiet else print(line, flush=True))
    fingerprint = run_fingerprint(spec, recipe, dataset)
    out = Path(out_dir) if out_dir is not None else None
    state = prepare_out_dir(out, spec, recipe, resume, fingerprint)
    torch.manual_seed(recipe.seed)
    data = dataset.staged(recipe.train_split, device, spec.resolution, recipe.train_fraction)
    batch = min(recipe.batch_size, len(data))
    channels_last = use_channels_last(runtime, device)
    model = _build_model(spec, recipe, device, channels_last, init_weights)
    normalize = Normalize(*dataset.mean_std(), channels_last).to(device)
    optimizer = make_optimizer(model, recipe)
    ema = WeightEMA(model, recipe.ema_decay) if recipe.ema_decay > 0 else None
    steps = len(data) // batch  # static shapes: the last partial batch is dropped
    amp = amp_dtype(recipe.precision, device)
    stepper = TrainStep(torch.compile(model) if runtime.compile else model, optimizer, ema, normalize,
                        lr_schedule(recipe, steps), recipe.label_smoothing, amp,
                        (batch, dataset.channels, spec.resolution, spec.resolution), device)
    run = Run(spec, recipe, dataset, runtime, device, data,
              dataset.staged("val", device, spec.resolution), batch, steps, amp, model,
              copy.deepcopy(model) if ema is not None else model, ema, normalize, stepper, out, say,
              fingerprint)
    if state is not None:
        _load_state(state, run)
        say(f"resuming {spec.name} after epoch {run.start_epoch}/{recipe.epochs}")
    return run


def _capture_graph(run: Run) -> None:
    if run.device.type != "cuda" or not run.runtime.cuda_graphs or run.runtime.compile:
        return
    try:
        run.stepper.capture()
    except torch.cuda.OutOfMemoryError:
        raise
    except RuntimeError as exc:  # keep training: eager is slower, not wrong
        run.say(f"warning: CUDA graph capture failed ({str(exc).splitlines()[0]}); training eagerly")
        run.stepper.optimizer.zero_grad()


ETA_PROBE_STEPS = 3        # steps timed at the start of the first epoch on a CPU
ETA_WARN_SECONDS = 3600.0  # warn when the whole run looks longer than this


def _warn_if_slow(run: Run, seconds: float) -> None:
    """After the first few CPU steps, warn in one line when the run will take over an hour."""
    if run.device.type != "cpu":
        return
    total = seconds / ETA_PROBE_STEPS * run.steps_per_epoch * run.recipe.epochs
    if total > ETA_WARN_SECONDS:
        run.say(f"warning: on this CPU one epoch of {run.spec.name} takes about "
                f"{seconds / ETA_PROBE_STEPS * run.steps_per_epoch / 60:,.0f} min and the run about "
                f"{total / 3600:,.1f} h; a GPU (--device cuda), a smaller spec or resolution, or a "
                "shorter recipe (--recipe demo, --epochs) is much faster")


def run_epoch(run: Run, epoch: int) -> dict:
    """One pass over the training split; returns the epoch's metrics (no validation yet)."""
    start = time.perf_counter()
    # data order and augmentation depend only on (seed, epoch): a resumed run replays them
    gen = torch.Generator(run.device).manual_seed(run.recipe.seed * 1_000_003 + epoch)
    images = augment_epoch(run.data.images, run.recipe.augment, gen)
    order = torch.randperm(len(run.data), generator=gen, device=run.device)
    stepper, batch = run.stepper, run.batch
    for i in range(run.steps_per_epoch):
        idx = order[i * batch:(i + 1) * batch]
        torch.index_select(images, 0, idx, out=stepper.x)
        torch.index_select(run.data.labels, 0, idx, out=stepper.y)
        stepper.run()
        if i + 1 == ETA_PROBE_STEPS and epoch == 0:
            _warn_if_slow(run, time.perf_counter() - start)
    loss_sum, correct = stepper.take_stats()  # synchronises
    seconds = time.perf_counter() - start
    lr = float(stepper.lrs[min(int(stepper.step_index), len(stepper.lrs)) - 1])
    steps = run.steps_per_epoch
    return {"epoch": epoch + 1, "train_loss": loss_sum / steps, "train_acc": correct / (steps * batch),
            "val_acc": None, "val_loss": None, "lr": lr, "seconds": seconds,
            "images_per_s": steps * batch / seconds}


def evaluation_model(run: Run) -> torch.nn.Module:
    """The weights to evaluate (EMA when kept), with BatchNorm statistics made precise; refreshed
    once per training step count, so validation, checkpoint and test share one refresh."""
    step = int(run.stepper.step_index)
    if run.evaluated_at == step:
        return run.eval_model
    run.evaluated_at = step
    if run.ema is not None:
        run.ema.copy_to(run.eval_model)
    if run.recipe.precise_bn > 0:
        from .precise_bn import recompute_bn_stats
        subset = run.dataset.staged("train", run.device, run.spec.resolution,
                                    min(1.0, run.recipe.precise_bn / max(len(run.dataset.train), 1)))
        recompute_bn_stats(run.eval_model, subset.images, run.normalize,
                           batch_size=min(run.batch, 256), max_images=run.recipe.precise_bn)
    return run.eval_model


def evaluate_split(run: Run, split: str) -> tuple[float, float, int]:
    """(accuracy, loss, images) of the evaluation weights on `split`; its per-image outcomes
    are kept in run.outcomes[split] for result.json."""
    data = run.val if split == "val" else run.dataset.staged(split, run.device, run.spec.resolution)
    acc, loss, correct = evaluate_outcomes(evaluation_model(run), data, run.normalize, run.amp,
                                           run.runtime.eval_batch_size)
    run.outcomes[split] = pack(correct)
    return acc, loss, len(data)


def _is_eval_epoch(recipe: Recipe, epoch: int) -> bool:
    return (epoch + 1) % recipe.eval_every == 0 or epoch + 1 == recipe.epochs


def _train_epochs(run: Run, result: TrainResult, callback: Optional[EpochCallback]) -> None:
    recipe, say = run.recipe, run.say
    progress = Progress(recipe.epochs, run.start_epoch, say)
    label = "val(seen)" if recipe.train_split == "train+val" else "val"
    for epoch in range(run.start_epoch, recipe.epochs):
        metrics = run_epoch(run, epoch)
        run.history.append(metrics)
        if not math.isfinite(metrics["train_loss"]):
            result.status = "diverged"
            say(f"epoch {epoch + 1}: training loss is {metrics['train_loss']}; stopping "
                "(diverged: lower the learning rate)")
            return
        if _is_eval_epoch(recipe, epoch):
            metrics["val_acc"], metrics["val_loss"], _ = evaluate_split(run, "val")
        result.epochs_run = epoch + 1
        progress.advance()
        say(_epoch_line(metrics, recipe.epochs, progress, label))
        if run.out is not None:
            _save_checkpoint(run)
        if callback is not None:
            callback(metrics)


def finish(run: Run, result: TrainResult, evaluate_test: bool, wall_start: float) -> TrainResult:
    """Fill in the totals, evaluate the test split if asked, write result.json."""
    history = run.history
    result.history = history
    result.val_acc = next((h["val_acc"] for h in reversed(history) if h["val_acc"] is not None), None)
    result.train_seconds = sum(h["seconds"] for h in history)
    result.images_seen = len(history) * run.steps_per_epoch * run.batch
    result.images_per_s = result.images_seen / max(result.train_seconds, 1e-9)
    if result.status == "completed" and evaluate_test:
        result.test_acc, _, result.test_images = evaluate_split(run, "test")
        run.say(f"test accuracy {result.test_acc:.4f} ({result.test_images} images)")
    result.val_outcomes, result.test_outcomes = run.outcomes.get("val"), run.outcomes.get("test")
    result.wall_seconds = time.perf_counter() - wall_start
    if run.out is not None:
        write_text(run.out / "result.json", json.dumps(result.to_dict(), indent=2))
    return result


def train(spec: ArchSpec, dataset: Dataset, recipe: Recipe, *, runtime: Runtime = Runtime(),
          out_dir: Optional[str | Path] = None, resume: bool = False,
          callback: Optional[EpochCallback] = None, evaluate_test: bool = False,
          log: Optional[Callable[[str], None]] = None,
          init_weights: Optional[dict] = None) -> TrainResult:
    """Train `spec` on `dataset` with `recipe`.

    Args:
        spec: the network; its num_classes and in_channels must match the data set.
        dataset: a loaded data set (`nas.data.load_dataset`).
        recipe: epochs, optimizer, schedule, augmentation, seed, ...
        runtime: device and speed settings (they never change what is computed on the CPU).
        out_dir: a run folder for checkpoint.pt, metrics.csv and result.json (None: keep nothing).
        resume: continue the interrupted run in `out_dir`.
        callback: called with each epoch's metrics; may raise (e.g. optuna.TrialPruned) to stop.
        evaluate_test: evaluate the test split at the end (never used for selection).
        log: where progress lines go (default: print unless runtime.quiet).
        init_weights: a state_dict to start from (fine-tuning) instead of random weights.
    """
    wall_start = time.perf_counter()
    run = setup(spec, dataset, recipe, runtime, out_dir, resume, log, init_weights)
    count = analytic_count(spec)
    result = TrainResult("completed", spec.name, run.start_epoch, run.history, macs=count.macs,
                         params=count.params, resolution=spec.resolution, device=str(run.device),
                         fingerprint=run.fingerprint)
    try:
        _capture_graph(run)
        result.setup_seconds = time.perf_counter() - wall_start
        run.say(f"training {spec.name} ({count.params:,} params, {count.macs / 1e6:.1f} M MACs at "
                f"{spec.resolution}px) on {dataset.name} [{len(run.data)} images, batch {run.batch}] "
                f"for {recipe.epochs} epochs on {run.device}"
                f"{' with CUDA graphs' if run.stepper.graph else ''}")
        _train_epochs(run, result, callback)
    except torch.cuda.OutOfMemoryError as exc:
        raise TrainError(f"CUDA out of memory training {spec.name} at {spec.resolution}px with "
                         f"batch size {run.batch}; lower batch_size in the recipe") from exc
    return finish(run, result, evaluate_test, wall_start)


def _epoch_line(m: dict, epochs: int, progress: Progress, val_label: str) -> str:
    val = f"  {val_label} {m['val_acc'] * 100:5.2f}%" if m["val_acc"] is not None else ""
    return (f"epoch {m['epoch']}/{epochs}  loss {m['train_loss']:.4f}  train {m['train_acc'] * 100:5.2f}%"
            f"{val}  lr {m['lr']:.4g}  {m['images_per_s']:,.0f} img/s  {progress.suffix()}")


def _save_checkpoint(run: Run) -> None:
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    save_atomic({
        "format": FORMAT, "spec": run.spec.to_dict(), "recipe": run.recipe.to_dict(),
        "fingerprint": run.fingerprint, "normalize": list(run.dataset.mean_std()),
        "val_fraction": run.dataset.val_fraction,
        "epoch": len(run.history), "history": run.history, "model": run.model.state_dict(),
        "weights": evaluation_model(run).state_dict(), "optimizer": run.stepper.optimizer.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "step_index": int(run.stepper.step_index), "rng": rng,
    }, run.out / CHECKPOINT)
    write_metrics(run.out, run.history)


def _load_state(state: dict, run: Run) -> None:
    run.model.load_state_dict(state["model"])
    run.stepper.optimizer.load_state_dict(state["optimizer"])
    if run.ema is not None and state["ema"] is not None:
        run.ema.load_state_dict(state["ema"])
    run.stepper.step_index.fill_(state["step_index"])
    torch.set_rng_state(state["rng"]["cpu"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    run.start_epoch, run.history = state["epoch"], list(state["history"])
