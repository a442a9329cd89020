"""Judge a subnet with inherited weights: extract it, recompute its BatchNorm statistics on
a fixed set of training images (precise BN), and score it on a split."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import Dataset, Split
from ..search.space import SearchSpace, load_space
from ..spec import ArchSpec
from ..train.augment import Normalize
from ..train.checkpoint import load_tensors
from ..train.evaluation import evaluate_outcomes
from ..train.precise_bn import recompute_bn_stats
from ..train.runtime import resolve_device
from .modules import Supernet, extract
from .plan import SupernetError, SupernetPlan, plan_supernet

BN_IMAGES = 512   # the first 512 training images (unaugmented) recalibrate every subnet's BN
EVAL_BATCH = 1000


def judge_loaded(model: Supernet, spec: ArchSpec, bn_images: torch.Tensor, data: Split,
                 normalize: Normalize) -> tuple[float, float, object]:
    """(accuracy on `data`, seconds, per-image correct flags) of subnet `spec` of `model`.

    Args:
        model: the supernet (its weights are only read).
        spec: a net the supernet runs (`SupernetPlan.check_runs`).
        bn_images: uint8 training images that recompute the subnet's BN statistics.
        data: the staged split to score.
        normalize: uint8 -> float input transform (contiguous layout).
    """
    start = time.perf_counter()
    net = extract(model, spec)
    recompute_bn_stats(net, bn_images, normalize, batch_size=256, max_images=len(bn_images))
    acc, _loss, correct = evaluate_outcomes(net, data, normalize, None, EVAL_BATCH)
    return acc, time.perf_counter() - start, correct



def load_state(path: Path) -> dict:
    """A supernet.pt's contents (tensors and plain data only; a damaged file is named)."""
    state = load_tensors(path, "a supernet.pt written by `nas supernet train`")
    if not isinstance(state, dict) or "model" not in state or "fingerprint" not in state:
        raise SupernetError(f"{path} is not a supernet.pt written by `nas supernet train`")
    return state


@dataclass
class LoadedSupernet:
    """A trained supernet read from its folder, ready to judge subnets."""

    folder: Path
    space: SearchSpace
    plan: SupernetPlan
    model: Supernet
    meta: dict

    def check_data(self, dataset: Dataset) -> None:
        """Refuse data the supernet was not trained on (its classes would mean other things)."""
        if dataset.name != self.meta["dataset"] or dataset.num_classes != self.meta["num_classes"]:
            raise SupernetError(f"supernet {self.folder} was trained on {self.meta['dataset']} "
                                f"({self.meta['num_classes']} classes), not {dataset.name}; judge it on its own data")


def read_meta(folder: Path) -> tuple[dict, SearchSpace, SupernetPlan]:
    """(supernet.json, the space, the plan) of a supernet folder, without its weights."""
    meta_path = folder / "supernet.json"
    if not meta_path.is_file():
        raise SupernetError(f"{folder} holds no trained supernet (supernet.json); train one with "
                            "`nas supernet train --out DIR`")
    meta = json.loads(meta_path.read_text())
    space_file = folder / "space.yaml"
    space = load_space(str(space_file) if space_file.is_file() else meta["space"])
    return meta, space, plan_supernet(space)


def load_supernet(folder: str | Path, device: str = "cpu") -> LoadedSupernet:
    """Read `nas supernet train`'s folder (supernet.pt, supernet.json, space.yaml)."""
    folder = Path(folder)
    if not (folder / "supernet.pt").is_file():
        raise SupernetError(f"{folder} holds no trained supernet (supernet.pt); train one with "
                            "`nas supernet train --out DIR`")
    meta, space, plan = read_meta(folder)
    state = load_state(folder / "supernet.pt")
    model = Supernet(plan, meta["num_classes"])
    model.load_state_dict(state["model"])
    model = model.to(resolve_device(device)).eval()
    return LoadedSupernet(folder, space, plan, model, meta)


def judge_inputs(dataset: Dataset, device: torch.device, resolution: int,
                 split: str = "val") -> tuple[torch.Tensor, Split, Normalize]:
    """(BN-recalibration images, the split judged, the input transform) every judgement reads;
    `Dataset.staged` memoises the copies, so repeated calls cost nothing."""
    bn = dataset.staged("train", device, resolution).images[:BN_IMAGES]
    return bn, dataset.staged(split, device, resolution), Normalize(*dataset.mean_std(), False).to(device)


def _inputs(loaded: LoadedSupernet, dataset: Dataset, split: str):
    return judge_inputs(dataset, next(loaded.model.parameters()).device, loaded.space.base.resolution, split)


def judge_dataset(loaded: LoadedSupernet, spec: ArchSpec, dataset: Dataset, split: str = "val") -> tuple[float, float]:
    """(accuracy on `split`, seconds) of subnet `spec` (checked by the caller)."""
    bn, data, normalize = _inputs(loaded, dataset, split)
    acc, seconds, _ = judge_loaded(loaded.model, spec, bn, data, normalize)
    return acc, seconds


def extract_calibrated(loaded: LoadedSupernet, spec: ArchSpec, dataset: Dataset):
    """(standalone net with precise-BN statistics, its validation accuracy)."""
    bn, data, normalize = _inputs(loaded, dataset, "val")
    net = extract(loaded.model, spec)
    recompute_bn_stats(net, bn, normalize, batch_size=256, max_images=len(bn))
    acc, _loss, _ = evaluate_outcomes(net, data, normalize, None, EVAL_BATCH)
    return net.cpu(), acc
