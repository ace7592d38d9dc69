"""``ganeval gate``: CI quality gate. Exit 0 when every criterion passes, 1 when one fails, 2 on bad input.

Outputs: one line per criterion (stdout; stderr with ``--json``), ``--json`` (the verdict on stdout),
``--junit PATH`` (JUnit XML, one testcase per criterion) and, when ``GITHUB_STEP_SUMMARY`` is set, a
Markdown table appended to that file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganeval.errors import EXIT_INPUT, GanevalError

if TYPE_CHECKING:
    from ganeval.gating import GateResult

SUITE = "ganeval-gate"
CRITERIA = ("max_fid", "min_is", "max_kid", "min_mnist_is", "min_modes", "max_mnist_fd", "min_coverage", "min_copying_ct",
            "min_inception_copying_ct", "max_custom_fd", "min_precision", "min_recall", "max_mnist_kid", "min_mnist_precision",
            "min_mnist_recall", "min_mnist_coverage", "max_fid_over_floor", "max_mnist_fd_over_floor", "max_mnist_ppl",
            "max_custom_ppl", "max_sfid", "max_sfid_over_floor")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ganeval gate``: the CI quality gate over a run or a report folder."""
    from ganeval.cli.cmd_score import add_score_options

    p = sub.add_parser(
        "gate", help="CI quality gate: exit 0 if every criterion passes, 1 if one fails, 2 on bad input",
        description="Judge one checkpoint against limits and/or a baseline report. TARGET is a checkpoint or a "
                    "checkpoint folder (scored first, report written to CKPT_DIR/report or --out) or an existing "
                    "report folder / summary.json (nothing recomputed). Exit codes: 0 pass, 1 a criterion failed, "
                    "2 usage or input error. See docs/ci.md.")
    p.add_argument("target", metavar="TARGET", help="checkpoint, checkpoint folder, report folder or summary.json")
    c = p.add_argument_group("criteria (at least one; limits are judged on the point estimate)")
    c.add_argument("--max-fid", type=float, metavar="X", help="fail if FID > X")
    c.add_argument("--max-sfid", type=float, metavar="X", help="fail if sFID (spatial FID) > X (needs --metrics with sfid)")
    c.add_argument("--min-is", type=float, metavar="Y", help="fail if the Inception Score < Y")
    c.add_argument("--max-kid", type=float, metavar="Z", help="fail if KID > Z")
    c.add_argument("--min-mnist-is", type=float, metavar="W", help="fail if the MNIST Inception Score < W")
    c.add_argument("--min-modes", type=int, metavar="M", help="fail if fewer than M digit classes are covered")
    c.add_argument("--max-mnist-fd", type=float, metavar="V", help="fail if the MNIST Fréchet distance > V")
    c.add_argument("--min-coverage", type=float, metavar="C", help="fail if coverage (Inception features, k=5) < C")
    c.add_argument("--min-precision", type=float, metavar="P", help="fail if precision (Inception features, k=3) < P")
    c.add_argument("--min-recall", type=float, metavar="R", help="fail if recall (Inception features, k=3) < R")
    c.add_argument("--max-mnist-kid", type=float, metavar="Z", help="fail if KID in MNIST-classifier features > Z")
    c.add_argument("--min-mnist-precision", type=float, metavar="P", help="fail if precision (MNIST-classifier features) < P")
    c.add_argument("--min-mnist-recall", type=float, metavar="R", help="fail if recall (MNIST-classifier features) < R")
    c.add_argument("--min-mnist-coverage", type=float, metavar="C", help="fail if coverage (MNIST-classifier features) < C")
    c.add_argument("--max-fid-over-floor", type=float, metavar="X",
                   help="fail if FID exceeds real held-out images' FID at the same N by more than X (scores --real-floor)")
    c.add_argument("--max-sfid-over-floor", type=float, metavar="X", help="the same for sFID (needs --metrics with sfid)")
    c.add_argument("--max-mnist-fd-over-floor", type=float, metavar="X", help="the same for MNIST FD")
    c.add_argument("--min-copying-ct", type=float, metavar="T",
                   help="fail if the data-copying statistic C_T < T (e.g. -3: samples memorise training images)")
    c.add_argument("--min-inception-copying-ct", type=float, metavar="T", help="the same in Inception features")
    c.add_argument("--max-custom-fd", type=float, metavar="V",
                   help="fail if the Fréchet distance in your --feature-network's space > V")
    c.add_argument("--max-mnist-ppl", type=float, metavar="L",
                   help="fail if the perceptual path length in MNIST-classifier features > L (a jumpy latent space; "
                        "needs --metrics with mnist_ppl)")
    c.add_argument("--max-custom-ppl", type=float, metavar="L", help="the same in your --feature-network's space")
    c.add_argument("--baseline", metavar="REPORT|MODEL",
                   help="previous report (folder or summary.json), or a model (checkpoint, generator file, samples) "
                        "re-scored beside the judged checkpoint, to compare with")
    c.add_argument("--max-regression", type=float, metavar="PCT",
                   help="with --baseline: fail if FID (else the primary metric) is worse by more than PCT%% and the "
                        "difference is beyond noise: a report's bootstrap intervals do not overlap, or a model's paired "
                        "interval of the difference excludes 0 (default 0)")
    p.add_argument("--checkpoint", default="last", metavar="best|last|PATH",
                   help="which checkpoint is judged (default last: is what we ship good?)")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON on stdout (the lines go to stderr)")
    p.add_argument("--junit", type=Path, default=None, metavar="PATH", help="write JUnit XML (one testcase per criterion)")
    s = p.add_argument_group("scoring (only when TARGET is not a report; same flags and defaults as 'ganeval score')")
    add_score_options(s)  # type: ignore[arg-type]  # an argument group has the same add_argument API
    s.add_argument("--out", type=Path, default=None, help="report folder (default CKPT_DIR/report)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``ganeval gate``; returns 0 pass, 1 fail, 2 bad input."""
    from ganeval.cli.cmd_score import options_from_args, print_notes
    from ganeval.gating import gate
    from ganeval.launch import launched_rank
    from ganeval.options import ScoreOptions

    opts = options_from_args(args)
    defaults = ScoreOptions().as_dict()
    # Only what differs from the defaults, so a report TARGET can say which scoring flags it ignored.
    options: dict[str, Any] = {k: v for k, v in opts.as_dict().items() if v != defaults[k]}
    if args.distributed is not None:
        options["distributed"] = args.distributed
    if args.junit:  # a path that cannot be written is refused before scoring, not found after it
        from ganeval.atomic import output_file

        output_file(args.junit, "--junit")
    try:
        result = gate(args.target, **{k: getattr(args, k) for k in CRITERIA}, baseline=args.baseline,
                      max_regression=args.max_regression, checkpoint=args.checkpoint, out=args.out, **options)
    except GanevalError as exc:
        if launched_rank() == 0:
            _emit(args, None, str(exc))
        raise
    # torchrun: rank 0 alone prints the verdict and writes the CI files. By torchrun's RANK, not the joined group's:
    # a report TARGET joins none, and bad options are refused before scoring joins it, so every rank would say 0.
    if launched_rank() != 0:
        return result.exit_code
    if result.scored and getattr(args, "no_progress", False):  # with progress, they were printed as they came
        print_notes(result.summary)
    print("\n".join(result.lines()), file=sys.stderr if args.json else sys.stdout)
    _emit(args, result, None)
    return result.exit_code


def _emit(args: argparse.Namespace, result: GateResult | None, error: str | None) -> None:
    """The JSON verdict, the JUnit file and the GitHub step summary (also for exit-2 errors)."""
    if args.json:
        verdict = result.to_dict() if result else {"passed": False, "exit_code": EXIT_INPUT, "error": error,
                                                   "checkpoint": None, "criteria": []}
        print(json.dumps(verdict, indent=2, allow_nan=False))
    if args.junit:
        from ganeval.atomic import write_text

        try:
            write_text(args.junit, junit_xml(result, error))
        except OSError as exc:
            raise GanevalError(f"{args.junit}: cannot write the JUnit XML: {exc.strerror or exc}") from None
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as fh:
                fh.write(markdown(result, error))
        except OSError as exc:
            print(f"ganeval: warning: cannot append to GITHUB_STEP_SUMMARY {step_summary}: {exc}", file=sys.stderr)


def junit_xml(result: GateResult | None, error: str | None = None) -> str:
    """JUnit XML: testsuite ``ganeval-gate``, one testcase per criterion, ``<failure>`` for failed ones
    (an input error is one ``<error>`` testcase named ``gate``)."""
    cases = result.criteria if result else []
    failures = sum(not c.passed for c in cases)
    attrs = {"name": SUITE, "tests": str(len(cases) or 1), "failures": str(failures), "errors": "0" if result else "1"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", attrs)
    if result is None:
        case = ET.SubElement(suite, "testcase", {"classname": SUITE, "name": "gate"})
        ET.SubElement(case, "error", {"message": error or "error", "type": "input"}).text = error
    else:
        props = ET.SubElement(suite, "properties")
        for name, value in (("checkpoint", result.row.get("checkpoint")), ("selector", result.selector),
                            ("report", result.report), ("baseline", result.baseline)):
            if value is not None:
                ET.SubElement(props, "property", {"name": name, "value": str(value)})
        for c in cases:
            case = ET.SubElement(suite, "testcase", {"classname": f"{SUITE}.{result.row.get('checkpoint')}", "name": c.name})
            if c.passed:
                ET.SubElement(case, "system-out").text = c.message
            else:
                ET.SubElement(case, "failure", {"message": c.message, "type": "threshold"}).text = c.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def markdown(result: GateResult | None, error: str | None = None) -> str:
    """A short Markdown section for ``GITHUB_STEP_SUMMARY``."""
    from ganeval.report.markdown import md_code, md_text

    if result is None:
        return f"### ganeval gate: error (exit {EXIT_INPUT})\n\n{md_text(error)}\n\n"
    from ganeval.gating import fmt

    head = "passed ✅" if result.passed else "FAILED ❌"
    lines = [f"### ganeval gate: {head} — {md_code(result.row.get('checkpoint'))} ({md_text(result.selector)})", "",
             "| criterion | metric | value | limit | CI | result |", "|---|---|---|---|---|---|"]
    for c in result.criteria:
        ci = f"[{fmt(c.ci[0])}, {fmt(c.ci[1])}]" if c.ci else "–"
        lines.append(f"| {c.name} | {c.metric} | {fmt(c.value)} | {fmt(c.limit)} | {ci} | {'pass' if c.passed else '**FAIL**'} |")
    lines += [f"\nnote: {md_text(n)}" for n in result.notes]
    return "\n".join(lines) + "\n\n"
