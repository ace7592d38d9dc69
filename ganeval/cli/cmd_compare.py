"""``ganeval compare A B …`` / ``--arm NAME RUN… --arm NAME RUN…``: is one model better than another, beyond noise?"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from ganeval.cli.cmd_score import add_score_options, options_from_args, print_notes
from ganeval.errors import EXIT_FAILED, EXIT_OK, GanevalError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ganeval compare``: is one checkpoint (or arm of runs) better than another, beyond noise."""
    p = sub.add_parser("compare", help="compare models (or several runs of each) with intervals of their differences",
                       description="Score two or more models in one run (same latents, reference and resampled indices) "
                                   "and give each one's FID / MNIST FD difference from the baseline with an interval: "
                                   "a paired bootstrap over samples for single runs, a Welch interval over runs when "
                                   "each arm has several (training seeds). docs/compare.md")
    p.add_argument("target", type=Path, nargs="*", metavar="TARGET",
                   help="one model per argument (a checkpoint, TorchScript/ONNX file, or a folder, zip or .npz of samples; "
                        "a checkpoint folder with --pick)")
    p.add_argument("--arm", nargs="+", action="append", metavar=("NAME", "RUN"), default=None,
                   help="a named arm and its runs (e.g. --arm dcgan s1/ckpt.safetensors s2/ckpt.safetensors); repeat per arm")
    p.add_argument("--baseline", default=None, help="the arm the others are compared with (default: the first)")
    p.add_argument("--pick", choices=["best", "last"], default=None,
                   help="a run may be a checkpoint folder: score it and compare its best (on a fresh latent set, seed + 1) "
                        "or its last checkpoint")
    p.add_argument("--permutations", type=int, default=1000, metavar="P",
                   help="one run against one: decide MNIST FD / custom_fd differences by a permutation test with P "
                        "re-labellings (default 1000; at least 19 at --ci 0.95; 0: by the bootstrap interval)")
    p.add_argument("--sequential", type=int, default=10, metavar="H",
                   help="stop the permutation test at the H-th re-labelling as extreme as the observed difference, "
                        "p = H / drawn (Besag–Clifford; a clearly large p costs ~H/p re-labellings, not P; default 10); 0: draw all P")
    add_score_options(p)
    p.add_argument("--out", type=Path, default=None, help="report folder (default: the runs' common folder/compare)")
    p.add_argument("--json", action="store_true", help="print compare.json on stdout")
    p.set_defaults(func=run)


def _arms(args: argparse.Namespace) -> dict[str, list[Path]] | list[Path]:
    if args.arm and args.target:
        raise GanevalError("give the models either as TARGETs or as --arm NAME RUN…, not both")
    if not args.arm:
        return list(args.target)
    arms: dict[str, list[Path]] = {}
    for name, *runs in args.arm:
        if not runs:
            raise GanevalError(f"--arm {name}: no runs given (--arm NAME RUN [RUN …])")
        if name in arms:
            raise GanevalError(f"--arm {name}: given twice")
        arms[name] = [Path(r) for r in runs]
    return arms


def run(args: argparse.Namespace) -> int:
    """Run ``ganeval compare``; returns the exit code (0 done, 1 a side failed, 2 bad input)."""
    from ganeval.comparing import arm_columns, compare

    opts = options_from_args(args).as_dict()
    extra = opts.pop("extra")  # inception_all as given: compare() applies one plan, the API's
    comp = compare(_arms(args), baseline=args.baseline, pick=args.pick, out=args.out, write_report=True,
                   permutations=args.permutations, sequential=args.sequential,
                   distributed=args.distributed, **extra, **opts)
    report = comp.summary.get("report")
    if report is None:  # a torchrun rank other than 0: rank 0 prints and writes
        return EXIT_FAILED if comp.failed else EXIT_OK
    if args.no_progress:  # with progress, the scoring notes were printed as they came
        print_notes(comp.result.summary)
    if args.json:
        print(Path(report["json"]).read_text(), end="")
    else:
        cols = [c for c in ("arm", "runs_scored", *arm_columns()) if c in comp.arms and comp.arms[c].notna().any()]
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None  # logs and pipes: one line per arm
        print(comp.arms[cols].to_string(index=False, line_width=width))
        for line in comp.summary["verdict_lines"]:
            print(line)
        print(f"report: {report['html']}")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as fh:
                fh.write(Path(report["markdown"]).read_text(encoding="utf-8"))
        except OSError as exc:
            print(f"ganeval: warning: cannot append to GITHUB_STEP_SUMMARY {step_summary}: {exc}", file=sys.stderr)
    for _, row in comp.members[comp.members["status"] == "error"].iterrows():
        print(f"ganeval: error: {row['error']}", file=sys.stderr)
    for error in comp.series_errors:  # a picked folder's unreadable checkpoints: named and exit 1, as `score` does
        print(f"ganeval: error: {error}", file=sys.stderr)
    return EXIT_FAILED if comp.failed else EXIT_OK
