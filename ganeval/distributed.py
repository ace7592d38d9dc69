"""torch.distributed glue: which global batches this rank computes, and gathering them back in order.

Work is split by whole batches (rank r takes batches r, r+W, …), so every batch has the same contents
and shape as in a single-process run and the features, hence all metrics, come out identical.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from ganeval.errors import EXIT_FAILED, GanevalError, PeerLost, ShareFailed, one_line
from ganeval.launch import launched_rank  # noqa: F401  (re-exported: defined torch-free for the command's start-up)

T = TypeVar("T")
#: What torchrun sets for every process; without them there is no process group to join.
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def refuse_torchrun(what: str) -> None:
    """Refuse, before any work, a command that runs as one process only when started by torchrun (``WORLD_SIZE`` > 1):
    every rank would do the whole job and write the same files."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 1
    if world > 1:
        raise GanevalError(f"{what} does not run under torchrun; run it as one process")


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
        self._collective(dist.all_gather_object, gathered, {i: t.cpu() for i, t in local.items()})
        return _in_order(gathered, n_batches)

    def gather_to_main(self, obj: T) -> list[T] | None:
        """Every rank's ``obj`` (picklable) on rank 0, in rank order; the other ranks get ``None`` and keep no copy."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        gathered: list[T] | None = [None] * self.world if self.is_main else None  # type: ignore[list-item]
        self._collective(dist.gather_object, obj, gathered, dst=0)
        return gathered

    def all_reduce_sum(self, tensors: list[torch.Tensor]) -> None:
        """Sum each tensor over all ranks, in place (CPU tensors; NCCL runs them through this rank's GPU)."""
        if not self.active:
            return
        import torch.distributed as dist

        for t in tensors:
            work = t.cuda() if self.backend == "nccl" else t
            self._collective(dist.all_reduce, work, op=dist.ReduceOp.SUM)
            if work is not t:
                t.copy_(work.cpu())

    def my_share(self, work: Callable[[], T], name: str) -> T:
        """``work()``, this rank's share of a split computation, after which every rank learns whether any share failed.

        Called by every rank before gathering the shares, so a rank whose generator or network raised (say, out of
        memory on its GPU) fails that one source on every rank, with its message and exit code, instead of leaving
        its peers waiting in the gather until the process group times out. Any other exception than a
        ``GanevalError`` becomes ``ShareFailed`` naming ``name``, with one process as with several.
        """
        if not self.active:
            try:
                return work()
            except GanevalError:
                raise
            except Exception as exc:  # noqa: BLE001 - the same error, one process or several
                raise ShareFailed(f"{name}: {one_line(exc)}") from exc
        try:
            result = work()
        except GanevalError as exc:  # a ShareFailed stays one on every rank: the source fails, not a metric
            self._share_failure((str(exc), exc.exit_code, isinstance(exc, ShareFailed)))
            raise  # not reached: _share_failure raised
        except Exception as exc:  # noqa: BLE001 - any failure of this rank's share is every rank's failure
            self._share_failure((f"{name}: {one_line(exc)}", EXIT_FAILED, True))
            raise  # not reached
        self._share_failure(None)
        return result

    def _share_failure(self, error: tuple[str, int, bool] | None) -> None:
        """Gather every rank's ``(message, exit code, a source failure)`` or None; raise the lowest failed rank's on
        every rank (``ShareFailed`` for what the work raised or a ``ShareFailed``, as with one process)."""
        import torch.distributed as dist

        errors: list[tuple[str, int, bool] | None] = [None] * self.world
        self._collective(dist.all_gather_object, errors, error)
        for rank, failed in enumerate(errors):
            if failed is not None:
                message, code, raw = failed
                exc = (ShareFailed if raw else GanevalError)(message if rank == self.rank else f"{message} (on rank {rank})")
                exc.exit_code = code
                raise exc

    def _collective(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run one collective; a failure (a peer died or hung) becomes one clear error naming this rank."""
        if os.environ.get("GANEVAL_FAULT_RANK") == str(self.rank):  # fault injection for tests: this rank dies here
            os._exit(3)
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a failed collective means a peer died
            raise PeerLost(f"distributed run failed on rank {self.rank}: a peer rank died or hung ({exc})") from exc

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
            raise PeerLost(f"distributed run failed on rank {self.rank}: a peer rank died ({exc})") from exc
        return bool(flag.item())


def _in_order(parts: list[dict[int, torch.Tensor] | None], n_batches: int) -> list[torch.Tensor]:
    """Merge per-rank ``{batch index: tensor}`` dicts into the global batch order, refusing gaps."""
    merged: dict[int, torch.Tensor] = {}
    for part in parts:
        merged.update(part or {})
    missing = [i for i in range(n_batches) if i not in merged]
    if missing:
        raise GanevalError(f"distributed run: batches {missing[:5]} missing after gather")
    return [merged[i] for i in range(n_batches)]


#: Rows each rank sends to rank 0 in one gather of :meth:`HostRows.to_main` (about 32 MB of Inception features):
#: rank 0 receives a few of them at a time, not every other rank's whole share at once.
GATHER_ROWS = 4096


class HostRows:
    """One kind of per-row result of every batch (an extractor's features, each batch's NaN/Inf count) in one host
    tensor of ``n_rows``: batch ``b`` (rows ``b·bs:(b+1)·bs``) is copied in as it leaves the device, then dropped.

    Kept as per-batch tensors and joined at the end, features were held twice, and the small tensors kept between
    each batch's freed activations split glibc's heap into holes too small to reuse: peak RSS grew 10–20 KB per
    sample where the features are 0.6 KB (docs/scoring.md). Allocated at the first batch, whose shape and dtype
    (unless ``dtype`` is given) give the width (a feature network's is unknown before it runs).

    ``batches``: the only batches this process writes (a torchrun rank other than 0 whose rows go to rank 0 alone,
    :meth:`to_main`), packed in that order, so that it holds its share and no more; None: room for every row.
    ``ragged``: ``n_rows`` is the most there may be (a stream of images some of which may not read): any batch may
    be the short last one, and :meth:`settle` gives the true count before the rows are gathered.
    """

    def __init__(self, n_rows: int, batch_size: int, what: str, batches: range | None = None,
                 dtype: torch.dtype | None = None, ragged: bool = False) -> None:
        self.n_rows, self.batch_size, self.what, self.dtype, self.ragged = n_rows, batch_size, what, dtype, ragged
        self.n_batches = -(-n_rows // batch_size)
        self.batches = batches
        self.data: torch.Tensor | None = None

    def rows(self, b: int) -> slice:
        """Batch ``b``'s rows (the last batch may be short)."""
        return slice(b * self.batch_size, min((b + 1) * self.batch_size, self.n_rows))

    def _at(self, b: int) -> slice:
        """Where batch ``b``'s rows are in ``data``: its rows, or packed after the earlier of ``batches``."""
        rows = self.rows(b)
        if self.batches is None:
            return rows
        if b not in self.batches:
            raise GanevalError(f"{self.what}: batch {b} is not one of this process's")
        start = self.batches.index(b) * self.batch_size  # only the last batch may be short, and it comes last
        return slice(start, start + rows.stop - rows.start)

    def settle(self, n_rows: int) -> None:
        """The true number of rows of a ``ragged`` set, at most the one it was made for (every batch written)."""
        if not self.ragged or n_rows > self.n_rows:
            raise GanevalError(f"{self.what}: {n_rows} rows where {self.n_rows} were planned")
        self.n_rows, self.n_batches = n_rows, -(-n_rows // self.batch_size)
        if self.batches is not None:
            self.batches = range(self.batches.start, self.n_batches, self.batches.step)
        elif self.data is not None:
            self.data = self.data[:n_rows]

    def put(self, b: int, part: torch.Tensor) -> None:
        """Copy batch ``b``'s ``part`` (on any device) into its rows."""
        rows = self.rows(b)
        if self.ragged and 0 < len(part) < rows.stop - rows.start:  # this set's short last batch
            rows = slice(rows.start, rows.start + len(part))
        if part.shape[:1] != (rows.stop - rows.start,):  # one row would broadcast over them all
            raise GanevalError(f"{self.what}: {tuple(part.shape)} for rows {rows.start}:{rows.stop}, not one row each")
        if self.data is None:
            held = self.n_rows if self.batches is None else sum(min(self.batch_size, self.n_rows - i * self.batch_size)
                                                                for i in self.batches)
            self.data = torch.empty((held, *part.shape[1:]), dtype=self.dtype or part.dtype)
        at = self._at(b)
        self.data[at.start : at.start + len(part)].copy_(part)

    def joined(self, dist: DistContext) -> torch.Tensor:
        """Every row: this process's tensor as written, or under torchrun with every rank's batches gathered in."""
        if self.batches is not None:
            raise GanevalError(f"{self.what}: this process holds its own batches only; use to_main")
        if dist.active:
            data = self.data if self.data is not None else torch.empty(0)  # none: this rank had no batch
            mine = {b: data[self.rows(b)].clone() for b in dist.my_batches(self.n_batches)}  # a view pickles all rows
            parts = dist.gather_batches(mine, self.n_batches)
            del mine
            for b, part in enumerate(parts):
                self.put(b, part)
        if self.data is None:
            raise GanevalError(f"{self.what}: none were returned")
        return self.data

    def to_main(self, dist: DistContext) -> torch.Tensor | None:
        """Every row on the main process, None on the others, which drop theirs once sent.

        Under torchrun each rank sends its batches (rows written with ``batches=dist.my_batches(…)``) to rank 0,
        :data:`GATHER_ROWS` rows per rank at a time, and rank 0 copies them into its own tensor: it holds every row
        once, plus one gather's, where gathering them all at once held the other ranks' shares a second time.
        """
        if dist.active:
            per = max(1, GATHER_ROWS // self.batch_size)  # batches each rank sends per gather
            mine = dist.my_batches(self.n_batches)
            got = len(mine) if dist.is_main else 0
            for k in range(-(-len(range(0, self.n_batches, dist.world)) // per)):  # rank 0 has the most batches
                send = {} if dist.is_main or self.data is None else {
                    b: self.data[self._at(b)].clone() for b in mine[k * per:(k + 1) * per]}  # a view pickles all rows
                for part in dist.gather_to_main(send) or []:
                    for b, rows in part.items():
                        self.put(b, rows)
                        got += 1
                del send
            if not dist.is_main:
                self.data = None
                return None
            if got != self.n_batches:
                raise GanevalError(f"distributed run: {self.what}: {self.n_batches - got} batch(es) missing after gather")
        if self.data is None:
            raise GanevalError(f"{self.what}: none were returned")
        return self.data


def from_env(distributed: bool | None = None) -> DistContext:
    """Join the torchrun process group when asked (or when torchrun's variables are set)."""
    if distributed is False:
        return DistContext()
    raw = os.environ.get("WORLD_SIZE", "").strip() or "1"  # set but empty: as unset
    try:
        world = int(raw)
    except ValueError:
        raise GanevalError(f"WORLD_SIZE={raw!r}: not a number of processes (torchrun sets it); unset it to run as one "
                           "process") from None
    if distributed is None and world <= 1:
        return DistContext()
    import torch.distributed as dist

    if not dist.is_initialized():
        why = "--distributed" if distributed else f"WORLD_SIZE={os.environ.get('WORLD_SIZE')}"
        missing = [v for v in TORCHRUN_VARS if not os.environ.get(v)]
        if missing:
            raise GanevalError(f"{why}: not started by torchrun ({', '.join(missing)} not set); run it as "
                               "'torchrun --nproc_per_node=N -m ganeval …', or without --distributed")
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        try:
            dist.init_process_group(backend=backend)
        except (ValueError, RuntimeError) as exc:  # a bad rendezvous variable, an unreachable master
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise GanevalError(f"{why}: could not join the torchrun process group ({first})") from exc
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return DistContext(dist.get_rank(), dist.get_world_size(), dist.get_backend())


def process_rank() -> int:
    """This process's rank in the joined torchrun group (0 when none was joined)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def leave_together(code: int) -> int:
    """After a command returned ``code`` on this rank, wait for every rank, leave the process group, and return the
    exit code: rank 0's is the run's, so the others exit 0 once rank 0 is done (torchrun then names rank 0's).

    A rank that exits first makes torchrun stop the others (SIGTERM), maybe while rank 0 still writes the reports
    or prints the verdict. A peer that failed (it exits without coming here) ends the wait: its error is its own.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        try:
            dist.barrier()
            if dist.get_rank() != 0:
                code = 0
        except Exception:  # noqa: BLE001 - a peer that died has said why; this rank's own result stands
            pass
    shutdown()
    return code


def abandon(code: int) -> None:
    """On an error, a rank of a joined torchrun group exits now with ``code`` (``os._exit``, streams flushed).

    Leaving the group could wait on a dead peer, and leaving it to the interpreter's exit can abort in gloo's
    threads (SIGABRT, "terminate called without an active exception"), which torchrun then reports instead of the
    error's exit code. Returns when no group was joined (one process, or tests calling the CLI in-process).
    """
    import sys

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def shutdown() -> None:
    """Leave the process group, if one was joined, before the interpreter exits.

    Without this, gloo's worker threads can still be running at exit and a rank dies with "terminate called
    without an active exception" (SIGABRT) after finishing its work, failing the whole torchrun job.
    Called by the CLI after a command returns; API users who joined a group leave it themselves.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

