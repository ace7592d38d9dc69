"""``ganeval score TARGET...``: score every checkpoint (generator, sample set), rank them, write the reports."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ganeval.cli.arguments import ListAction
from ganeval.errors import EXIT_FAILED, EXIT_OK, GanevalError
from ganeval.names import METRIC_NAMES, PRECISIONS
from ganeval.options import ScoreOptions

if TYPE_CHECKING:
    import pandas as pd


def add_score_options(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``score`` and ``gate`` (defaults from ``ScoreOptions``)."""
    d = ScoreOptions()
    p.add_argument("--num-samples", type=int, default=d.num_samples, help=f"samples per checkpoint (default {d.num_samples})")
    p.add_argument("--metrics", action=ListAction, valid=list(METRIC_NAMES), default=list(d.metrics), metavar="METRIC",
                   help=f"metrics to compute, space- or comma-separated, from: {' '.join(METRIC_NAMES)} "
                        f"(default: {' '.join(d.metrics)})")
    p.add_argument("--reference", default=d.reference, help="mnist-train, mnist-test, or a stats folder/.npz (default mnist-train)")
    p.add_argument("--device", default=d.device, help="auto|cpu|cuda (default auto: CUDA when present)")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help=f"images per generator and feature-network batch (default {d.batch_size})")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the shared latent set: an integer from 0 to 2**32 - 1 (default 0)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--inception-top-k", type=int, default=d.inception_top_k,
                   help="Inception metrics on the K best by MNIST FD plus the last (default 3; CPU default plan)")
    g.add_argument("--inception-all", action="store_true", default=None, help="Inception metrics on every checkpoint (GPU default)")
    p.add_argument("--precision", default=d.precision, choices=list(PRECISIONS),
                   help="feature precision (default fp32); bf16 (AMX CPUs, GPUs) and tf32 (CUDA only) are faster but change features")
    p.add_argument("--resize", default=d.resize, choices=["tf1x", "clean"],
                   help="Inception's resize to 299: tf1x (torch-fidelity's; default) or clean (clean-fid's; needs its own statistics)")
    p.add_argument("--bootstrap", type=int, default=d.bootstrap,
                   help=f"bootstrap replicates for the intervals (default {d.bootstrap}; 0: none)")
    p.add_argument("--ci", type=float, default=d.ci, metavar="LEVEL",
                   help=f"level of every interval and paired test, between 0 and 1 (default {d.ci})")
    p.add_argument("--primary", default=None,
                   help="column to rank by (default fid where computed, else sfid, else mnist_fd, else custom_fd)")
    p.add_argument("--late-threshold", type=float, default=d.late_threshold,
                   help=f"relative worsening of the last checkpoint flagged as late collapse (default {d.late_threshold}: 10%%)")
    p.add_argument("--inception-weights", default=None, help="Inception weights file (.pth state dict or .safetensors)")
    p.add_argument("--feature-network", default=None, metavar="MODULE:NAME",
                   help=f"your own feature network for the custom_* metrics "
                        f"({', '.join(m for m in METRIC_NAMES if m.startswith('custom_'))}), "
                        "against --reference statistics made with it (docs/reference_stats.md)")
    p.add_argument("--feature-network-kwargs", default=None, metavar="JSON", help="its constructor arguments")
    p.add_argument("--copy-train", default=None, metavar="DATA",
                   help="copying test: the generator's training images (mnist-train, mnist-test, or a folder, zip or uint8 "
                        ".npz; default mnist-train with an MNIST reference)")
    p.add_argument("--copy-heldout", default=None, metavar="DATA",
                   help="copying test: real images the generator never saw (default mnist-test with an MNIST reference)")
    p.add_argument("--copy-cells", type=int, default=d.copy_cells, help=f"copying test: k-means cells (default {d.copy_cells})")
    p.add_argument("--copying-threshold", type=float, default=d.copying_threshold,
                   help=f"flag data copying when C_T is below this (default {d.copying_threshold})")
    p.add_argument("--real-floor", nargs="?", const="auto", default=None, metavar="DATA",
                   help="also score N held-out real images (a seeded random subset) exactly like a checkpoint, the floor to read "
                        "every metric against (not ranked): the other MNIST split by default, or a folder, zip or uint8 .npz")
    p.add_argument("--no-cache", action="store_true", help="recompute features even when cached")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads while scoring, 1 to 1024 (default: one per core; with several processes on one machine, "
                        "cores/processes)")
    p.add_argument("--distributed", action="store_true", default=None, help="join the torchrun process group")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars or plan line (e.g. for CI logs); the notes are printed once scoring ends")
    i = p.add_argument_group("generator files and callables (used when the file cannot tell; docs/inputs.md)") \
        if isinstance(p, argparse.ArgumentParser) else p  # gate passes an argument group: no nesting
    i.add_argument("--z-dim", type=int, default=None, metavar="N", help="latent size (read from the file when it says)")
    i.add_argument("--z-type", default=None, choices=["normal", "uniform"],
                   help="latent distribution: N(0, 1) or U(-1, 1) (default normal)")
    i.add_argument("--output-range", default=None, choices=["-1,1", "0,1", "0,255"], metavar="-1,1|0,1|0,255",
                   help="range of float generator output (default -1,1; write --output-range=-1,1); uint8 output is used as is")
    i.add_argument("--generator", default=None, metavar="MODULE:NAME",
                   help="score weight files (.pt/.pth/.ckpt/.bin/.safetensors state dicts, read with weights_only=True) "
                        "with your generator class or factory, e.g. models:Generator or path/to/models.py:Generator")
    i.add_argument("--generator-kwargs", default=None, metavar="JSON", help="its constructor arguments, e.g. '{\"nz\": 100}'")
    i.add_argument("--state-key", default=None, metavar="KEY",
                   help="where in the file the generator's weights are (e.g. g_ema, or state_dict.G) when several fit")
    i.add_argument("--recursive", action="store_true", default=None,
                   help="a folder of samples is its whole tree, one sample set (e.g. a class-per-folder tree)")


def options_from_args(args: argparse.Namespace) -> ScoreOptions:
    """ScoreOptions from parsed ``add_score_options`` flags."""
    return ScoreOptions.from_kwargs(
        num_samples=args.num_samples, metrics=tuple(args.metrics), reference=args.reference, device=args.device,
        batch_size=args.batch_size, seed=args.seed, inception_top_k=args.inception_top_k, inception_all=args.inception_all,
        precision=args.precision, resize=args.resize, bootstrap=args.bootstrap, ci=args.ci, primary=args.primary,
        late_threshold=args.late_threshold,
        inception_weights=args.inception_weights, use_cache=not args.no_cache, threads=args.threads,
        feature_network=args.feature_network, feature_network_kwargs=args.feature_network_kwargs,
        copy_train=args.copy_train, copy_heldout=args.copy_heldout, copy_cells=args.copy_cells,
        copying_threshold=args.copying_threshold, real_floor=args.real_floor,
        progress=not getattr(args, "no_progress", False),
        extra={k: v for k in ("z_dim", "z_type", "output_range", "generator", "generator_kwargs", "state_key", "recursive")
               if (v := getattr(args, k, None)) is not None},
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ganeval score`` with the scoring options it shares with gate and watch."""
    p = sub.add_parser("score", help="score every checkpoint of a folder, rank them, write reports")
    p.add_argument("target", type=Path, nargs="+", metavar="TARGET",
                   help="checkpoint folder or file; TorchScript/ONNX generator or a folder of them; a folder, zip or .npz "
                        "of samples; several targets form one series (e.g. run/iter_*/)")
    add_score_options(p)
    p.add_argument("--out", type=Path, default=None, help="report folder (default CKPT_DIR/report)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--columns", action=ListAction, default=None, metavar="COL",
                   help="columns of the printed table, in this order (any scores.csv column of the metrics asked for, "
                        "e.g. iteration,fid,kid_mean,rank); default: the headline columns of every metric asked for")
    p.set_defaults(func=run)


#: Printed first, in this order, when computed; every other requested metric's headline columns follow.
HEADLINE = ("fid", "sfid", "is_mean", "kid_mean", "mnist_is", "mnist_fd", "modes_covered", "copying_ct")

#: Columns left to the CSV and the report: they qualify a headline column rather than rank checkpoints.
SECONDARY = ("class_kl", "mnist_confidence", "copy_share", "inception_copy_share")


def printed_columns(metrics: tuple[str, ...] | list[str]) -> list[str]:
    """The printed table's metric columns: the headline ones, then those of each other metric asked for (without
    intervals, standard deviations, per-digit and bookkeeping columns, which stay in the CSV and the report)."""
    from ganeval.metrics.registry import METRICS
    from ganeval.report.writers import COLUMNS

    extra = [c for m in metrics if m in METRICS for c in METRICS[m].columns
             if not c.endswith(("_ci_low", "_ci_high", "_std", "_slope", "_cells")) and "digit" not in c
             and c not in HEADLINE and c not in SECONDARY]
    order = {c: i for i, c in enumerate(COLUMNS)}  # the files' order, whatever the order of --metrics
    return [*HEADLINE, *sorted(dict.fromkeys(extra), key=lambda c: order.get(c, len(order)))]


#: Columns every scores table has, whatever the metrics.
BOOKKEEPING = ("iteration", "checkpoint", "n_samples", "rank", "is_best", "mode_collapse", "mode_collapse_sure",
               "data_copying", "status", "error", "seconds", "path", "sha256")
#: Written for stored sample sets (folders, zips, arrays) alone: their unreadable images.
SAMPLE_SET_COLUMNS = ("n_bad_images",)


def check_columns(columns: list[str], metrics: tuple[str, ...] | list[str]) -> None:
    """Refuse, before any scoring, a ``--columns`` name that no requested metric writes (a typo would otherwise
    surface only after the whole run)."""
    from ganeval.metrics.registry import METRICS, table_columns

    for col in columns:
        if col in BOOKKEEPING or col in SAMPLE_SET_COLUMNS or any(col in table_columns(METRICS[m]) for m in metrics if m in METRICS):
            continue
        owners = [name for name, m in METRICS.items() if col in table_columns(m)]
        if owners:
            raise GanevalError(f"--columns {col}: written by metric {owners[0]}, which is not in --metrics")
        raise GanevalError(f"--columns {col}: no such column ('ganeval metrics' lists every metric's columns; "
                           f"each table also has {', '.join(BOOKKEEPING)})")


def table_text(table: pd.DataFrame, columns: list[str], width: int | None, explicit: bool = False) -> str:
    """The printed table: the given columns (by default only those that have a value; every one, in order, when the
    user named them with ``--columns``); wrapped into blocks of ``width`` characters when given (a terminal), one line
    per checkpoint otherwise (logs and pipes stay greppable)."""
    cols = list(columns) if explicit else [c for c in columns if c in table and table[c].notna().any()]
    return table.reindex(columns=cols).to_string(index=False, line_width=width)


def floor_line(floor: dict, cols: list[str]) -> str:
    """``real held-out (mnist-test), N = 1000: fid 1.02, mnist_fd 0.037, …``: the floor beside the printed table."""
    values = floor.get("values", {})
    shown = ", ".join(f"{c} {v:.4g}" for c in cols if isinstance(v := values.get(c), int | float) and not isinstance(v, bool))
    return f"{floor['name']}, N = {floor.get('n')}: {shown or floor.get('error') or 'no values'}"


def print_notes(summary: dict) -> None:
    """The scoring notes (unavailable metrics, small N, ignored files), as ``note:`` lines on stderr."""
    for note in summary.get("notes", []):
        print(f"note: {note}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``ganeval score``; returns 0 all scored, 1 some checkpoint failed, 2 bad input."""
    from ganeval.atomic import report_folder
    from ganeval.distributed import from_env
    from ganeval.evaluate import score_series
    from ganeval.hint_use import check_hints_read
    from ganeval.inputs import resolve_target
    from ganeval.report import write_reports

    opts = options_from_args(args)
    if args.columns and args.json:  # --json prints the summary, not the table: the columns would be taken and ignored
        raise GanevalError("--columns chooses the printed table's columns, and --json prints the summary instead: give one")
    if args.columns:
        check_columns(args.columns, opts.metrics)
    dist = from_env(args.distributed)
    series = resolve_target(args.target, **opts.extra)
    check_hints_read([series], opts.extra)  # --z-dim with ganeval checkpoints or samples: read by none of them
    if (asked := [c for c in args.columns or () if c in SAMPLE_SET_COLUMNS]) and not any(
            s.kind in ("images", "npz", "array") for s in series.sources):  # else printed as an empty column
        raise GanevalError(f"--columns {asked[0]}: written for stored sample sets (image folders, zips, .npz) alone, "
                           "and no target is one")
    out = report_folder(args.out, series.report_dir)  # a file in the way: refused before scoring
    result = score_series(series, opts, dist)
    if not dist.all_ok(True):
        return EXIT_FAILED
    if not dist.is_main:
        return EXIT_FAILED if result.failed else EXIT_OK
    if not opts.progress:  # with progress, they were printed as they came
        print_notes(result.summary)
    paths = write_reports(result, out)
    if args.json:
        summary = json.loads(paths["json"].read_text())
        print(json.dumps(summary, indent=2))
    else:
        cols = args.columns or ["iteration", *printed_columns(opts.metrics), "n_bad_images", "rank", "status"]
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
        print(table_text(result.table, cols, width, explicit=bool(args.columns)))
        cols = [c for c in cols if c in result.table]
        if result.summary.get("real_floor"):
            print(floor_line(result.summary["real_floor"], cols))
        print(result.summary["verdict"])
        print(f"report: {paths['html']}")
    for _, row in result.table[result.table["status"] == "error"].iterrows():
        print(f"ganeval: error: {row['error']}", file=sys.stderr)
    return EXIT_FAILED if result.failed else EXIT_OK
