"""Training and evaluation pieces wired into MONAI's SupervisedTrainer/SupervisedEvaluator by the bundle.

``ModelSpec``, ``OperatingPoint`` and the trained-model artifact live in :mod:`mcolor.artifact` (inference and
bundle sharing use them without this package); they are re-exported here for configs written before.
"""

from mcolor.artifact import ModelSpec, OperatingPoint
from mcolor.engines.checkpoint import ResumeFromLast, find_last_checkpoint, load_checkpoint
from mcolor.engines.handlers import LearningRateLogger, NonFiniteLossGuard, RNGState, TransferSchedule
from mcolor.engines.losses import build_loss
from mcolor.engines.metrics import ClassificationMetrics
from mcolor.engines.optim import build_optimizer, build_scheduler
from mcolor.engines.trained_bundle import TrainedBundleWriter

__all__ = [
    "ClassificationMetrics", "LearningRateLogger", "ModelSpec", "NonFiniteLossGuard", "OperatingPoint",
    "RNGState", "ResumeFromLast", "TrainedBundleWriter", "TransferSchedule", "build_loss", "build_optimizer",
    "build_scheduler", "find_last_checkpoint", "load_checkpoint",
]
