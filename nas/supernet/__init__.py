"""A weight-sharing supernet of a search space: train once (sandwich rule, in-place
distillation), then judge any subnet in seconds with inherited weights and precise BN."""
from .plan import SupernetError, SupernetPlan, op_of, plan_supernet

__all__ = ["SupernetError", "SupernetPlan", "op_of", "plan_supernet"]
