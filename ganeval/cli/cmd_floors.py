"""``ganeval floors``: real-data floors of the shipped reference statistics."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganeval.cli.arguments import ListAction


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ganeval floors``: the real-image floor of each metric at given sample counts."""
    p = sub.add_parser("floors", help="real-data floors (FID test vs train, IS of real test) of the reference statistics")
    p.add_argument("--root", type=Path, default=None, help="statistics folder (default: the shipped reference_stats/)")
    p.add_argument("--features-dir", type=Path, default=None,
                   help="per-image features (mnist-{test,train}_{extractor}.npy from `stats --save-features`) for a float64 check")
    p.add_argument("--extractors", action=ListAction, default=["inception", "inception-clean", "mnist"],
                   help="feature spaces to measure (default: inception inception-clean mnist)")
    p.add_argument("--device", default="cpu", help="auto|cpu|cuda (default cpu)")
    p.add_argument("--knn-n", type=int, default=0, metavar="N",
                   help="also KID, precision/recall and density/coverage of N test vs N train images (e.g. 10000), the real "
                        "images `score` compares with at that N (a fixed uniform subset of each split)")
    p.add_argument("--write", action="store_true", help="record into floors.json and the sidecars")
    p.add_argument("--merge", action="store_true",
                   help="keep the recorded values this run does not recompute (e.g. the float64 check of --features-dir)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ganeval floors``; returns the exit code (0 written, 2 bad input)."""
    from ganeval.errors import StatsError, require_count
    from ganeval.floors import compute_floors, merge_floors, record_floors
    from ganeval.stats import SHIPPED_DIR

    require_count(args.knn_n, 0, "--knn-n")  # a negative N was taken as 0: the k-NN floors silently left out
    if args.features_dir is not None and not args.features_dir.is_dir():  # was skipped: no float64 check, nothing said
        what = "is not a folder" if args.features_dir.exists() else "no such folder"
        raise StatsError(f"--features-dir {args.features_dir}: {what} (the per-image features of `stats --save-features`)")
    root = Path(args.root or SHIPPED_DIR)
    recorded: dict = {}  # --merge: read (and checked) before the floors are computed; none recorded yet: nothing to keep
    if args.merge and (root / "floors.json").is_file():
        try:
            recorded = json.loads((root / "floors.json").read_text())
        except (ValueError, OSError) as exc:
            raise StatsError(f"{root / 'floors.json'}: cannot be read for --merge ({exc})") from exc
        if not isinstance(recorded, dict):
            raise StatsError(f"{root / 'floors.json'}: not a floors record (a JSON object) for --merge")
    floors = compute_floors(root, args.features_dir, args.device, tuple(args.extractors), args.knn_n)
    if args.merge:
        floors = merge_floors(recorded, floors)
    print(json.dumps(floors, indent=2))
    if args.write:
        print(f"wrote {record_floors(floors, root)}")
    return 0
