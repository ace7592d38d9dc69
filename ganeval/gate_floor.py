"""Gate limits relative to the real-data floor: ``fid − floor ≤ X``.

A Fréchet distance falls with N (FD_N ≈ FD∞ + c/N), so an absolute ``--max-fid`` depends on the N it was chosen at.
Its excess over real held-out images at the same N keeps only the difference of the two c/N bias terms, small for a
model near the real distribution (the shipped DCGAN: FID 6.46 at N = 2,000 and 4.09 at 10,000, 2.7 and 3.1 above
the floor; docs/scoring.md), so one limit serves the quick N of a pull request and the large N of a release."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ganeval.errors import GanevalError
from ganeval.gate_rules import Criterion, fmt, number
from ganeval.summary import json_value

#: criterion → the Fréchet-distance column it limits the excess of.
FLOOR_LIMITS = {"max_fid_over_floor": "fid", "max_sfid_over_floor": "sfid", "max_mnist_fd_over_floor": "mnist_fd"}


def floor_criterion(name: str, limit: float, row: dict[str, Any], summary: dict[str, Any], source: Path | str) -> Criterion:
    """Pass when the judged row's distance exceeds the floor's (same run, same N) by at most ``limit``."""
    metric, flag = FLOOR_LIMITS[name], "--" + name.replace("_", "-")
    floor = summary.get("real_floor") or {}
    base = number((floor.get("values") or {}).get(metric), f"{source}: real_floor.{metric}")
    if not floor or floor.get("status") != "ok" or base is None:
        why = "has no real-data floor" if not floor else f"has no usable floor {metric} ({floor.get('status')})"
        raise GanevalError(f"{flag}: {source} {why}; score with --real-floor (the gate adds it when it scores)")
    ckpt = row.get("checkpoint")
    value = number(row.get(metric), f"{source}: {ckpt}.{metric}")
    if value is None and row.get("status") != "nan_samples":
        raise GanevalError(f"{flag}: {metric} was not computed for {ckpt} in {source}; refusing to pass it")
    excess = math.inf if value is None else value - base
    passed = excess <= limit
    what = (f"{metric} − floor = {fmt(excess)} ({metric} {fmt(value)}, real held-out {fmt(base)} at N = {floor.get('n')})")
    msg = f"{what} {'<=' if passed else 'is above the limit'} {'limit ' if passed else ''}{fmt(limit)} ({flag})"
    return Criterion(name, f"{metric}_over_floor", excess, limit, passed, None, msg,
                     {"floor": base, "measured": json_value(value), "floor_n": floor.get("n")})
