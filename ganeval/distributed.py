"""torch.distributed glue: which global batches this rank computes, and gathering them back in order.

Work is split by whole batches (rank r takes batches r, r+W, …), so every batch has the same contents
and shape as in a single-process run and the features, hence all metrics, come out identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ganeval.errors import GanevalError


@dataclass
class DistContext:
    """Rank, world size and the process group in use (``None`` when not distributed)."""

    rank: int = 0
    world: int = 1
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def my_batches(self, n_batches: int) -> range:
        """Indices of the global batches this rank computes."""
        return range(self.rank, n_batches, self.world)

    def gather_batches(self, local: dict[int, torch.Tensor], n_batches: int) -> list[torch.Tensor]:
        """All ranks' batches in global order (on CPU); every rank receives the full list."""
        if not self.active:
            return [local[i] for i in range(n_batches)]
        import torch.distributed as dist

        gathered: list[dict[int, torch.Tensor] | None] = [None] * self.world
        if os.environ.get("GANEVAL_FAULT_RANK") == str(self.rank):  # fault injection for tests: this rank dies here
            os._exit(3)
        try:
            dist.all_gather_object(gathered, {i: t.cpu() for i, t in local.items()})
        except Exception as exc:  # noqa: BLE001 - a failed collective means a peer died
            raise GanevalError(f"distributed scoring failed on rank {self.rank}: a peer rank died or hung ({exc})") from exc
        merged: dict[int, torch.Tensor] = {}
        for part in gathered:
            merged.update(part or {})
        missing = [i for i in range(n_batches) if i not in merged]
        if missing:
            raise GanevalError(f"distributed scoring: batches {missing[:5]} missing after gather")
        return [merged[i] for i in range(n_batches)]

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def all_ok(self, ok: bool) -> bool:
        """True only when every rank reports ok (used before rank 0 writes anything)."""
        if not self.active:
            return ok
        import torch.distributed as dist

        flag = torch.tensor([1 if ok else 0], device="cuda" if self.backend == "nccl" else "cpu")
        try:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        except Exception as exc:  # noqa: BLE001 - a failed collective means a peer died
            raise GanevalError(f"distributed scoring failed on rank {self.rank}: a peer rank died ({exc})") from exc
        return bool(flag.item())


def from_env(distributed: bool | None = None) -> DistContext:
    """Join the torchrun process group when asked (or when torchrun's variables are set)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if distributed is False or (distributed is None and world <= 1):
        return DistContext()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return DistContext(dist.get_rank(), dist.get_world_size(), dist.get_backend())


def shutdown() -> None:
    """Leave the process group, if one was joined, before the interpreter exits.

    Without this, gloo's worker threads can still be running at exit and a rank dies with "terminate called
    without an active exception" (SIGABRT) after finishing its work, failing the whole torchrun job.
    Called by the CLI after a command returns; API users who joined a group leave it themselves.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

