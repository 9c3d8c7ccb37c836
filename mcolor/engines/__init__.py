"""Training and evaluation pieces wired into MONAI's SupervisedTrainer/SupervisedEvaluator by the bundle."""

from mcolor.engines.checkpoint import ModelSpec, ResumeFromLast, find_last_checkpoint, load_checkpoint
from mcolor.engines.handlers import LearningRateLogger, NonFiniteLossGuard, RNGState, TransferSchedule
from mcolor.engines.losses import build_loss
from mcolor.engines.metrics import ClassificationMetrics, OperatingPoint
from mcolor.engines.optim import build_optimizer, build_scheduler

__all__ = [
    "ClassificationMetrics", "LearningRateLogger", "ModelSpec", "NonFiniteLossGuard", "OperatingPoint",
    "RNGState", "ResumeFromLast", "TransferSchedule", "build_loss", "build_optimizer", "build_scheduler",
    "find_last_checkpoint", "load_checkpoint",
]
