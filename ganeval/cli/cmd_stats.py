"""``ganeval stats``: reference statistics of real data for one or more extractors."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ganeval.names import PRECISIONS


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ganeval stats``: compute, import or export reference statistics."""
    p = sub.add_parser("stats", help="compute mean/covariance of real features (reference statistics)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", metavar="DATASET",
                     help="mnist-train, mnist-test, or your own real images: a folder or zip of PNG/JPEG, or a uint8 .npz")
    src.add_argument("--import", dest="import_file", type=Path, metavar="FILE",
                     help="instead of images: statistics made by another tool (--made-by): a mu/sigma .npz or "
                          "torch-fidelity's *-stat-fid-2048.pt, recorded as imported")
    src.add_argument("--export", dest="export_stats", metavar="STATS",
                     help="the other way: ganeval statistics (mnist-train, mnist-test or a .npz with its sidecar) written "
                          "as --to's file in the folder --out, for that tool to score against")
    p.add_argument("--made-by", default=None, choices=["torch-fidelity", "clean-fid", "clean-fid-legacy-tensorflow",
                                                        "guided-diffusion", "guided-diffusion-spatial",
                                                        "pytorch-fid", "clean-fid-legacy-pytorch"],
                   help="with --import: the tool (and clean-fid mode) that made it; sets the extractor (guided-diffusion: "
                        "a reference batch's mu/sigma for FID, guided-diffusion-spatial: its mu_s/sigma_s for sFID). "
                        "pytorch-fid's and "
                        "legacy_pytorch's resize is not ganeval's: refused (docs/reference_stats.md#statistics-made-by-other-tools)")
    p.add_argument("--to", default=None, choices=["torch-fidelity", "clean-fid", "clean-fid-legacy-tensorflow"],
                   help="with --export: the tool (and clean-fid mode) to write for")
    p.add_argument("--name", default=None,
                   help="with --export: the cache or dataset name the tool will look up (default ganeval-<dataset>)")
    p.add_argument("--kid", action="store_true",
                   help="with --export: also the Inception features of every real image behind the statistics, where "
                        "the tool's KID reads them (one Inception pass over those images unless cached)")
    p.add_argument("--n", type=int, default=None, help="with --import: how many images the statistics were made from")
    p.add_argument("--description", default=None, help="with --import: what the images were (kept in the sidecar)")
    p.add_argument("--verify-with", default=None, metavar="DATASET",
                   help="with --import: the real images the tool used; ganeval computes their statistics and refuses the "
                        "import unless FD ≤ 0.01; then KID and precision/recall can use them too")
    p.add_argument("--extractor", default=None, nargs="+", action="extend", choices=["inception", "inception-clean", "inception-spatial",
                                                                  "inception-spatial-clean", "mnist", "custom"],
                   help="inception-clean: Inception with clean-fid's resize (name its file *_inception-clean.npz); "
                        "inception-spatial: sFID's features (*_inception-spatial.npz); "
                        "custom: your --feature-network (name its file *_custom.npz). Several: the images are read once "
                        "(inception and inception-spatial from one network pass); --out names the first's file "
                        "(*_FIRST.npz) and each other's is written beside it (*_OTHER.npz)")
    p.add_argument("--out", required=True, type=Path,
                   help="output .npz (a .json sidecar is written beside it); with --export: the folder to write into")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto: CUDA when present)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument("--precision", default=None, choices=list(PRECISIONS), help="with --dataset (default fp32)")
    p.add_argument("--inception-weights", default=None)
    p.add_argument("--feature-network", default=None, metavar="MODULE:NAME",
                   help="with --extractor custom: your feature network (docs/reference_stats.md#your-own-feature-network)")
    p.add_argument("--feature-network-kwargs", default=None, metavar="JSON", help="its constructor arguments")
    p.add_argument("--limit", type=int, default=None, help="with --dataset: only the first N images")
    p.add_argument("--recursive", action="store_true", default=None,
                   help="with --dataset FOLDER: the images of its whole tree (class subfolders), in natural path order")
    p.add_argument("--save-features", type=Path, default=None,
                   help="with --dataset: also save per-image pool features (.npy, float32)")
    p.add_argument("--distributed", action="store_true", default=None,
                   help="join the torchrun process group (automatic when WORLD_SIZE > 1)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


#: Flags that only ``--dataset`` uses (given, not defaults): refused with --import and --export, never ignored.
DATASET_ONLY = {"save_features": "--save-features", "limit": "--limit", "recursive": "--recursive", "precision": "--precision",
                "distributed": "--distributed", "feature_network": "--feature-network",
                "feature_network_kwargs": "--feature-network-kwargs"}


def _refuse_dataset_flags(args: argparse.Namespace, mode: str) -> None:
    from ganeval.errors import GanevalError

    given = [flag for key, flag in DATASET_ONLY.items() if getattr(args, key) is not None]
    if given:
        raise GanevalError(f"{', '.join(given)} {'goes' if len(given) == 1 else 'go'} with --dataset, not with {mode}")


def _outs(args: argparse.Namespace) -> list[Path]:
    """Where each ``--extractor``'s statistics go: ``--out``, and with several, each other's beside it, its own name
    in place of the first's (``ref/mine_inception.npz`` → ``ref/mine_inception-spatial.npz``)."""
    from ganeval.errors import GanevalError

    names = args.extractor or []
    if len(names) < 2:
        return [args.out]
    if len(set(names)) < len(names):
        raise GanevalError(f"--extractor {' '.join(names)}: an extractor given twice")
    if args.save_features is not None:
        raise GanevalError("--save-features goes with one --extractor (whose features it saves), not several")
    tail = f"_{names[0]}.npz"
    if not args.out.name.endswith(tail):
        raise GanevalError(f"--out {args.out}: with several --extractor, name the first's file *{tail} (the others' "
                           f"are written beside it as *_{names[1]}.npz, …)")
    return [args.out.with_name(args.out.name[: -len(tail)] + f"_{name}.npz") for name in names]


def _check_outputs(args: argparse.Namespace) -> None:
    """--out (each extractor's file) and --save-features, refused before any work when they cannot be written or
    would overwrite each other."""
    from ganeval.atomic import output_file
    from ganeval.errors import GanevalError
    from ganeval.stats import check_stats_out

    outs = [check_stats_out(path) for path in _outs(args)]
    if args.save_features is not None:
        feats = output_file(args.save_features, "--save-features")
        if feats.resolve() in (outs[0].resolve(), outs[0].with_suffix(".json").resolve()):
            raise GanevalError(f"--save-features {feats}: the same file as --out or its sidecar; give another path")


def run(args: argparse.Namespace) -> int:
    """Run ``ganeval stats``; returns 0 written, 1 a failure while computing, 2 bad input."""
    from ganeval.atomic import write_set
    from ganeval.devices import emulated_bf16_note
    from ganeval.distributed import from_env
    from ganeval.errors import EXIT_FAILED, GanevalError
    from ganeval.features import get_extractor, resolve_device
    from ganeval.stats import compute_stats_set, stats_files

    resolve_device(args.device)  # an unknown or absent device: one line before any work, whichever mode

    if args.import_file is not None or args.export_stats is not None:
        from ganeval.distributed import refuse_torchrun

        mode = "--import" if args.import_file is not None else "--export"
        if args.distributed is None:  # an explicit --distributed is refused with the other --dataset flags
            refuse_torchrun(f"stats {mode}")  # else every rank does the whole job (--kid, --verify-with) and writes
        return _import(args) if args.import_file is not None else _export(args)
    if args.to or args.name is not None or args.kid:
        raise GanevalError("--to, --name and --kid go with --export")
    if args.made_by or args.n is not None or args.description or args.verify_with:
        raise GanevalError("--made-by, --n, --description and --verify-with go with --import")
    if args.extractor is None:
        raise GanevalError("--extractor is required with --dataset (inception, inception-clean, inception-spatial, "
                           "inception-spatial-clean, mnist or custom)")
    _check_outputs(args)  # before the pass over the data, not after it
    dist = from_env(args.distributed)
    if args.inception_weights is not None and not any(n.startswith("inception") for n in args.extractor):
        raise GanevalError("--inception-weights goes with --extractor inception, inception-clean, inception-spatial or "
                           "inception-spatial-clean")
    if "custom" not in args.extractor and (args.feature_network is not None or args.feature_network_kwargs is not None):
        flag = "--feature-network" if args.feature_network is not None else "--feature-network-kwargs"
        raise GanevalError(f"{flag} goes with --extractor custom")
    extractors = [get_extractor(name, **_extractor_kwargs(args, name)) for name in args.extractor]
    if (note := emulated_bf16_note(args.precision, extractors[0].device)) and dist.is_main:
        print(f"note: {note}", file=sys.stderr)
    every = compute_stats_set(  # with --save-features, every image's pool features in one float32 tensor on rank 0
        args.dataset, extractors, args.batch_size, args.data_dir, args.limit,
        command="ganeval " + shlex.join(sys.argv[1:]), dist=dist, progress=args.progress,
        keeps_features=bool(args.save_features), recursive=bool(args.recursive),
    )
    features = every[0].features
    if not dist.all_ok(True):
        return EXIT_FAILED
    if not dist.is_main:
        return 0
    files = {path: data for out, stats in zip(_outs(args), every, strict=True) for path, data in stats_files(out, stats).items()}
    if features is not None:
        def save_features(fh: BinaryIO) -> None:  # straight into its temporary file: no copy in memory
            np.save(fh, features.numpy())  # float32 (HostRows' dtype) and contiguous: written as it is held

        files = {args.save_features: save_features, **files}
    write_set(files)  # one set: a failed write or an interrupt leaves every output as it was; the npz renamed last
    for out, stats in zip(_outs(args), every, strict=True):
        print(f"wrote {out} (N={stats.meta['n']}, {stats.meta['seconds']} s, {dist.world} process(es))")
    return 0


def _extractor_kwargs(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """The registry factory's arguments for extractor ``name`` from the command's flags."""
    kwargs: dict[str, Any] = {"device": args.device, "precision": args.precision or "fp32"}
    if name.startswith("inception"):
        kwargs["weights_path"] = args.inception_weights
    if name == "custom":
        kwargs.update(network=args.feature_network, network_kwargs=args.feature_network_kwargs)
    return kwargs


def _import(args: argparse.Namespace) -> int:
    from ganeval.errors import GanevalError
    from ganeval.stats_import import extractor_for, import_stats_file, imported_summary

    if not args.made_by:
        raise GanevalError("--import needs --made-by: which tool made the statistics decides what they can be compared with")
    if args.to or args.name is not None or args.kid:
        raise GanevalError("--to, --name and --kid go with --export")
    _refuse_dataset_flags(args, "--import")
    if args.data_dir is not None and args.verify_with is None:
        raise GanevalError("--data-dir goes with --verify-with (the MNIST files it reads), not with --import alone")
    _check_outputs(args)
    extractor_name = extractor_for(args.made_by, args.import_file)
    if args.extractor not in (None, [extractor_name]):
        raise GanevalError(f"statistics made by {args.made_by} are {extractor_name} statistics, not {' '.join(args.extractor)}")
    stats = import_stats_file(args.import_file, args.made_by, args.out, n=args.n, description=args.description,
                              weights_path=args.inception_weights, command="ganeval " + shlex.join(sys.argv[1:]),
                              verify_with=args.verify_with, device=args.device, batch_size=args.batch_size,
                              progress=args.progress, data_dir=args.data_dir)
    if not args.out.name.endswith(f"_{extractor_name}.npz"):  # once written: a refused import says its reason alone
        print(f"note: name it *_{extractor_name}.npz to use its folder as --reference", file=sys.stderr)
    print(f"wrote {args.out} ({extractor_name}, {imported_summary(stats.meta)})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ganeval.atomic import output_folder
    from ganeval.errors import GanevalError
    from ganeval.stats_export import export_stats

    if not args.to:
        raise GanevalError("--export needs --to: torch-fidelity, clean-fid or clean-fid-legacy-tensorflow")
    if args.made_by or args.n is not None or args.description or args.verify_with or args.extractor:
        raise GanevalError("--made-by, --n, --description, --verify-with and --extractor do not go with --export")
    _refuse_dataset_flags(args, "--export")
    if args.inception_weights is not None:
        raise GanevalError("--inception-weights does not go with --export (its --kid pass runs the weights ganeval "
                           "finds; statistics made with others are refused)")
    if args.data_dir is not None and not args.kid:
        raise GanevalError("--data-dir goes with --kid (the MNIST files its pass reads), not with --export alone")
    output_folder(args.out, "--out")

    def announce(n: int) -> None:
        print(f"--kid: Inception features of the {n:,} real images behind the statistics (one pass the first time, "
              "then cached; on a CPU about 16-20 images/s)", file=sys.stderr)

    done = export_stats(args.export_stats, args.to, args.out, name=args.name, command="ganeval " + shlex.join(sys.argv[1:]),
                        kid=args.kid, device=args.device, batch_size=args.batch_size, announce=announce,
                        data_dir=args.data_dir)
    for note in done.notes:
        print(f"note: {note}", file=sys.stderr)
    kid = f" and {done.kid_path.name}" if done.kid_path else ""
    said = ["replaced the earlier export of that name"] if done.replaced else []
    if done.removed_kid is not None:  # else the tool's KID would compare against the earlier statistics' images
        said.append(f"removed the earlier export's KID features {done.removed_kid.name}, which do not go with these "
                    "statistics: export with --kid for the tool's KID")
    print(f"wrote {done.path}{kid} ({'; '.join([*said, f'provenance: {done.sidecar.name}'])})\nuse it: {done.usage}")
    return 0
