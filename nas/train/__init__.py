"""The shared trainer: one code path for search proxies, scaling grids and final runs."""
from .runtime import Runtime
from .trainer import TrainError, TrainResult, evaluate, load_checkpoint, train

__all__ = ["Runtime", "TrainError", "TrainResult", "evaluate", "load_checkpoint", "train"]
