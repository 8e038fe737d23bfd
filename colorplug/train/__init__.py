"""Shared training machinery used by every backend's ``train.py``.

A backend provides a `TrainTask` (model, data, loss, optimizer); `fit` runs the loop:
seeds, validation split, progress bar, AMP on CUDA, per-epoch validation with a sample
grid PNG, checkpoints each epoch with ``resume``, and the final ``.safetensors`` weights
with metadata and a ``.sha256`` sidecar. Under ``torchrun`` the same loop trains with
DistributedDataParallel (`colorplug.train.distributed`).
"""
from .data import PhotoDataset, split_paths
from .loop import TrainConfig, TrainTask, fit

__all__ = ["PhotoDataset", "TrainConfig", "TrainTask", "fit", "split_paths"]
