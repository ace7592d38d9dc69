"""``ganeval export``: a checkpoint's generator alone, for shipping or handing on."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ganeval export``: one generator's weights alone, to ship."""
    p = sub.add_parser("export", help="write a checkpoint's generator alone (EMA weights by default) to a new file",
                       description="Write the generator that `ganeval score` would use (the EMA weights when the "
                                   "checkpoint has them) with the checkpoint's metadata to a new, smaller file.")
    p.add_argument("checkpoint", type=Path, help="a ganeval checkpoint (.safetensors)")
    p.add_argument("--out", required=True, type=Path, help="the new file, *.safetensors (must not exist)")
    p.add_argument("--raw", action="store_true", help="export the raw generator weights instead of the EMA ones")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ganeval export``; returns the exit code (0 written, 2 bad input)."""
    from ganeval.atomic import sha256_file
    from ganeval.checkpoints import export_generator, read_metadata
    from ganeval.errors import GanevalError

    if args.out.suffix.lower() != ".safetensors":  # ganeval reads a generator file by its extension: .pt as TorchScript
        raise GanevalError(f"--out {args.out}: must end in .safetensors (the export is a safetensors file, and ganeval "
                           f"score reads a file by its extension: {args.out.suffix or 'none'} would not load)")
    out = export_generator(args.checkpoint, args.out, use_ema=not args.raw)
    meta = read_metadata(out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {meta['exported_from']['weights']} weights of "
          f"{meta.get('model')} at iteration {meta.get('iteration')}; SHA-256 {sha256_file(out)[:12]}…)")
    return 0
