"""What sFID sees that FID does not: real MNIST test digits moved or mirrored, scored against the shipped training
statistics (docs/scoring.md, "sFID: spatial structure"; numbers in docs/results.md).

Inception's pooled features are averaged over the image, so a digit drawn a few pixels off centre keeps most of its
FID; sFID's features keep the 17×17 layout. Each row scores the same N test digits (the first N), transformed, with
``fid`` and ``sfid``, and gives each distance as a multiple of the untouched digits'.

    python benchmarks/sfid_shift.py --n 2000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

TRANSFORMS = ("none", "shift-2px", "shift-4px", "mirrored", "upside-down")


def transform(images: np.ndarray, name: str) -> np.ndarray:
    """``images`` (N, 28, 28) moved right (zeros shifted in), mirrored left-right, or turned upside down."""
    if name.startswith("shift"):
        k = int(name[len("shift-") : -len("px")])
        out = np.zeros_like(images)
        out[:, :, k:] = images[:, :, :-k]
        return out
    if name == "mirrored":
        return images[:, :, ::-1].copy()
    if name == "upside-down":
        return images[:, ::-1, :].copy()
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="test digits per row (default 2000)")
    parser.add_argument("--transforms", nargs="+", default=list(TRANSFORMS), choices=TRANSFORMS)
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="also score this checkpoint at the same N (repeatable), for the scale of a generator's values")
    args = parser.parse_args()

    import ganeval
    from ganeval.data import load_mnist

    digits = load_mnist("test")[0][: args.n]
    rows = []
    for name in args.transforms:
        t0 = time.time()
        df = ganeval.score(transform(digits, name), metrics=("fid", "sfid"), num_samples=args.n, bootstrap=0,
                           device="cpu", progress=False, use_cache=False)
        rows.append((name, float(df.iloc[0]["fid"]), float(df.iloc[0]["sfid"]), time.time() - t0))
    for ckpt in args.checkpoint:
        t0 = time.time()
        df = ganeval.score(ckpt, metrics=("fid", "sfid"), num_samples=args.n, bootstrap=0, device="cpu", progress=False,
                           use_cache=False)
        rows.append((df.iloc[0]["checkpoint"], float(df.iloc[0]["fid"]), float(df.iloc[0]["sfid"]), time.time() - t0))
    base = {"fid": rows[0][1], "sfid": rows[0][2]} if rows[0][0] == "none" else None
    print(f"real MNIST test digits (first {args.n}) against mnist-train's shipped statistics")
    print(f"{'images':<24} {'FID':>8} {'sFID':>8}" + ("  FID ×   sFID ×" if base else "") + "  seconds")
    for name, fid, sfid, secs in rows:
        ratio = f"  {fid / base['fid']:5.2f}  {sfid / base['sfid']:7.2f}" if base else ""
        print(f"{name:<24} {fid:8.2f} {sfid:8.2f}{ratio}  {secs:7.0f}")


if __name__ == "__main__":
    main()
