"""The shared trainer: one code path for search proxies, scaling grids and final runs."""
from .checkpoint import CHECKPOINT, TrainError, load_checkpoint
from .evaluation import evaluate, evaluate_checkpoint
from .runtime import Runtime
from .trainer import TrainResult, train

__all__ = ["CHECKPOINT", "Runtime", "TrainError", "TrainResult", "evaluate", "evaluate_checkpoint",
           "load_checkpoint", "train"]
