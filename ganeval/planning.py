"""The one-line plan ``score`` prints before working: what runs on which checkpoints, and roughly how long."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ganeval.devices import emulated_bf16_note

#: Rough CPU cost of the copying test per sample (60,000 training images; plan line only).
COPYING_SECONDS_PER_SAMPLE = 2e-4
#: Rough throughput used only for the plan line (images/s).
SPEED_HINT = {("inception", "cpu"): 13.0, ("inception", "cuda"): 5000.0, ("mnist", "cpu"): 3000.0, ("mnist", "cuda"): 50000.0,
              ("inception-spatial", "cpu"): 18.0, ("inception-spatial", "cuda"): 6500.0}


def plan_notes(metrics: Collection[str], n: int, extractors: Mapping[str, Any], ref_meta: Mapping[str, Mapping[str, Any]],
               precision: str, device: Any) -> list[str]:
    """The warning for each Inception Fréchet distance asked for (``fid``, ``sfid``) at an N below its feature
    dimension, where the covariance is rank-deficient (said only where that distance was asked for), and for bf16 on
    a CPU that emulates it."""
    notes = [note] if (note := emulated_bf16_note(precision, device)) else []
    for fd, name, space in (("FID", "inception", "Inception"), ("sFID", "inception-spatial", "sFID")):
        if fd.lower() in metrics and n < (dim := extractors[name].pool_dim):
            guide = f"compare {fd}s only at one N" if ref_meta[name].get("dataset") == "imported" else "KID is the better guide"
            notes.append(f"N={n} is below the {space} feature dimension ({dim}): {fd} is unreliable at this N; {guide}")
    return notes


def plan_line(k: int, n: int, device: str, precision: str, extractors: Collection[str], metrics: Collection[str],
              inception_all: bool, top_k: int, resize: str, world: int = 1) -> str:
    """``plan: K checkpoint(s) × N samples on DEVICE (...)``, then each extractor's share of the work (``extractors``:
    those running a network pass of their own; sFID's features ride on FID's pass when both are scored)."""
    parts = [f"plan: {k} checkpoint(s) × {n} samples on {device} ({precision})"]
    if "mnist" in extractors:
        secs = k * n / SPEED_HINT[("mnist", device)]
        if "copying" in metrics:  # nearest training images of every sample, once per checkpoint
            secs += k * n * COPYING_SECONDS_PER_SAMPLE
        parts.append(f"MNIST metrics on all (~{secs:.0f} s)")
    if "custom" in extractors:
        parts.append("your feature network's metrics on all")
    if inception := [e for e in ("inception", "inception-spatial") if e in extractors]:  # sFID alone: a pass of its own
        m = k if inception_all else min(k, top_k + 1)
        which = "all" if inception_all else f"the {top_k} best by MNIST FD + the last"
        # the best may be the last: before MNIST FD is known, top-k + last is a bound, not a count
        bound = "up to " if not inception_all and k > top_k else ""
        secs = sum(m * n / SPEED_HINT[(e, device)] for e in inception) / world
        extra = "" if resize == "tf1x" else f", {resize} resize"
        parts.append(f"Inception metrics on {which} ({bound}{m} × {n} images, ~{secs / 60:.1f} min{extra})")
    return "; ".join(parts)
