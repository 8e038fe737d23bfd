"""Running the training loop under ``torchrun``: one process per device, DDP in between.

`session` reads what torchrun puts in the environment (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``), joins the process group (NCCL on CUDA, gloo
on CPU) and leaves it at the end, errors included. Without torchrun, or with a single
process, nothing is initialised and the loop trains exactly as a plain process does.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from ..errors import InputError


class CollectiveError(InputError):
    """An error every rank reaches together (same input, same checkpoint): rank 0 alone
    prints it, so the terminal does not show it once per process."""


@dataclass
class DistEnv:
    """Where this process stands in the job: world size, its rank, and its device."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    device: torch.device | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- collectives (no-ops in a single process) --------------------------------------
    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if self.device is not None and self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (picklable objects; tensors travel on CPU)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._object_device())
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's `obj`, in rank order, on rank 0 (None elsewhere)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sums of `values` over ranks (e.g. a loss total and a step count)."""
        if not self.distributed:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self._object_device())
        dist.all_reduce(t)
        return t.cpu().tolist()

    def _object_device(self) -> torch.device:
        return self.device if self.device is not None and self.device.type == "cuda" \
            else torch.device("cpu")


def env_world() -> tuple[int, int, int]:
    """(world size, rank, local rank) as torchrun set them; (1, 0, 0) without torchrun."""
    def read(name: str, default: int) -> int:
        raw = os.environ.get(name)
        if raw in (None, ""):
            return default
        try:
            return int(raw)
        except ValueError:
            raise InputError(f"environment variable {name}={raw!r} is not an integer; "
                             "launch with torchrun, which sets it") from None
    world = read("WORLD_SIZE", 1)
    return world, read("RANK", 0), read("LOCAL_RANK", 0)


def _device_for(spec: Any, local_rank: int) -> torch.device:
    """One device per process: ``cuda:LOCAL_RANK`` when CUDA is asked for or available."""
    from ..device import resolve_device

    dev = resolve_device(spec)
    if dev.type == "cuda":
        if str(spec) not in ("auto", "cuda", "None") and dev.index is not None:
            raise InputError(f"--device {spec}: under torchrun each process uses the GPU its "
                             "LOCAL_RANK names; pass --device cuda (or auto) and choose GPUs "
                             "with CUDA_VISIBLE_DEVICES")
        if local_rank >= torch.cuda.device_count():
            raise InputError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} "
                             "CUDA device(s) here: --nproc_per_node must not exceed the GPUs "
                             "of a node")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    elif dev.type != "cpu":
        raise InputError(f"--device {spec}: distributed training runs on cuda or cpu")
    return dev


@contextlib.contextmanager
def session(device: Any = "auto") -> Iterator[DistEnv]:
    """The job this process belongs to; joins torchrun's process group if there is one and
    it is not joined yet, and destroys it on the way out (also on errors)."""
    world, rank, local_rank = env_world()
    if world <= 1:
        yield DistEnv()
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # an outer session owns the group
        yield DistEnv(dist.get_world_size(), dist.get_rank(), local_rank,
                      _device_for(device, local_rank))
        return
    if not dist.is_available():
        raise InputError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    dev = _device_for(device, local_rank)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend, device_id=dev if dev.type == "cuda" else None)
    try:
        yield DistEnv(world, rank, local_rank, dev)
    finally:
        dist.destroy_process_group()


def wrap_ddp(env: DistEnv) -> Callable[[torch.nn.Module], torch.nn.Module]:
    """DistributedDataParallel for `env` (identity in a single process): gradients are
    averaged over ranks in backward, parameters start from rank 0's."""
    def wrap(module: torch.nn.Module) -> torch.nn.Module:
        if not env.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        cuda = env.device is not None and env.device.type == "cuda"
        return DDP(module, device_ids=[env.device.index] if cuda else None)
    return wrap


def sync_batchnorm(model: torch.nn.Module, env: DistEnv) -> tuple[torch.nn.Module, str | None]:
    """BatchNorm layers synchronised across ranks (torch's SyncBatchNorm runs on CUDA only:
    on CPU the statistics stay per process, and the note says so)."""
    if not env.distributed:
        return model, None
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if not has_bn:
        return model, None
    if env.device is not None and env.device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model), None
    return model, ("note: BatchNorm statistics are computed per process on CPU (torch's "
                   "SyncBatchNorm needs CUDA); each process normalises its share of the batch")
