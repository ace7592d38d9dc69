"""``score``: sample every checkpoint from one latent set, extract features once per extractor, compute
the registered metrics, rank the series and give the verdicts. Reports are written by ``ganeval.report``."""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch

from ganeval import ranking
from ganeval.atomic import report_folder
from ganeval.copy_sets import resolve_copy_sets
from ganeval.distributed import DistContext, from_env
from ganeval.errors import GanevalError, ShareFailed, one_line, require_bool
from ganeval.extraction import Extracted, extract
from ganeval.feature_cache import load_metric, metric_key, metric_options, save_metric
from ganeval.features import get_extractor, resolve_device
from ganeval.features.base import FeatureExtractor, shared_passes
from ganeval.hint_use import check_hints_read
from ganeval.illustrations import Illustrations, shown_checkpoints
from ganeval.inputs import SAMPLE_KINDS, Series, Source, printable, resolve_target
from ganeval.metrics.fid import FIDReference, bootstrap_fid
from ganeval.metrics.registry import FD_COLUMN, INCEPTION_EXTRACTORS, METRICS, Metric, MetricInput
from ganeval.nearest import report_neighbours
from ganeval.options import ScoreOptions
from ganeval.path_length import source_path_lengths
from ganeval.planning import plan_line, plan_notes
from ganeval.real_floor import floor_source
from ganeval.real_images import RealImages
from ganeval.reference import dataset_features, reference_provenance, reference_stats
from ganeval.score_result import ScoreResult
from ganeval.sources.base import HINT_KEYS, shape_note
from ganeval.summary import build_summary
from ganeval.threads import cpu_threads, float32_mode


class _Evaluator(Illustrations, RealImages):
    def __init__(self, series: Series, opts: ScoreOptions, dist: DistContext) -> None:
        self.series, self.opts, self.dist = series, opts, dist
        self.device = resolve_device(opts.device)
        unknown = [m for m in opts.metrics if m not in METRICS]
        if unknown:
            raise GanevalError(f"unknown metric(s) {unknown} (known: {', '.join(METRICS)})")
        self.metrics: list[Metric] = [METRICS[m] for m in opts.metrics]
        self.notes: list[str] = list(series.notes)
        self.extractors: dict[str, FeatureExtractor] = {}
        self.refs: dict[str, FIDReference] = {}
        self.ref_meta: dict[str, dict[str, Any]] = {}
        self._real: dict[tuple[str, int], torch.Tensor] = {}
        for name in dict.fromkeys(m.extractor for m in self.metrics):
            kwargs: dict[str, Any] = {"device": self.device, "precision": opts.precision}
            if name in INCEPTION_EXTRACTORS:
                kwargs.update(weights_path=opts.inception_weights, resize=opts.resize)
            elif name == "custom":
                kwargs.update(network=opts.feature_network, network_kwargs=opts.feature_network_kwargs)
            self.extractors[name] = ex = get_extractor(name, **kwargs)
            if not opts.real_floor and not any(m.needs_reference for m in self.metrics if m.extractor == name):
                self.ref_meta[name] = {}  # Inception Scores, modes or path lengths alone: no reference statistics needed
                continue
            stats = reference_stats(opts.reference, ex, needs_images=self.compares_real(name))
            self.refs[name] = FIDReference(stats.mu, stats.sigma, stats.meta.get("n"))
            self.ref_meta[name] = stats.meta
            if stats.meta.get("precision", "fp32") != opts.precision:
                self.notes.append(f"{name} features in {opts.precision} against {stats.meta.get('precision', 'fp32')} reference "
                                  "statistics: distances shift slightly (see docs/performance.md)")
        if "inception" in self.extractors and not self.extractors["inception"].has_logits and "is" in opts.metrics:
            from ganeval.features.inception_weights import FULL_WEIGHTS_HINT

            self.notes.append(f"Inception Score unavailable: the Inception weights in use have no logits layer. {FULL_WEIGHTS_HINT}")
        self.notes += plan_notes(opts.metrics, opts.num_samples, self.extractors, self.ref_meta, opts.precision, self.device)
        self.copy_sets = resolve_copy_sets(opts, self.ref_meta)
        # The real-data floor is read (and checked) here, so a bad --real-floor fails before any checkpoint is scored;
        # score_floor draws it again at the N the checkpoints were really scored at. Only generators are sure to be
        # scored at --num-samples: a floor short of it is refused here only then.
        n_known = not any(src.kind in SAMPLE_KINDS for src in series.sources)
        self.floor = floor_source(opts.real_floor, self.ref_meta, opts.num_samples, opts.seed,
                                  n_known) if opts.real_floor else None
        self._datasets: dict[tuple[str, str], torch.Tensor] = {}
        self.memo: dict[str, Any] = {}
        rng = np.random.default_rng(opts.seed + 1)
        self.boot_idx = [rng.integers(0, opts.num_samples, opts.num_samples) for _ in range(opts.bootstrap)]
        self.unpaired: list[str] = []
        self.own_resamples: set[str] = set()  # sources bootstrapped on their own (stored samples, short of N): unpaired
        self.latents: dict[str, str] = {}  # each generator's latent size and type: only equal ones are paired
        self.rows: dict[str, dict[str, Any]] = {}
        self.grids: dict[str, np.ndarray] = {}
        self.replicates: dict[str, dict[str, np.ndarray]] = {}
        self.kept: dict[str, dict[str, torch.Tensor]] = {}

    def _metric_inputs(self) -> dict[str, Any]:
        """The options a metric function sees: the scoring options, the resolved copying sets, the device."""
        return {**self.opts.as_dict(), **self.copy_sets.get("options", {}), "copy_device": self.device}

    def _dataset_for(self, extractor: str, dataset: str, dist: DistContext | None = None) -> torch.Tensor:
        """A real image set's features, split over the ranks (all call it together), or ``dist`` (the panel: rank 0)."""
        if (extractor, dataset) not in self._datasets:
            batch = max(self.opts.batch_size, 500) if extractor == "mnist" else self.opts.batch_size  # small net: big batches
            self._datasets[(extractor, dataset)] = dataset_features(
                dataset, self.extractors[extractor], batch, self.opts.use_cache and self.dist.is_main,
                self.dist if dist is None else dist, read_cache=self.opts.use_cache)
        return self._datasets[(extractor, dataset)]

    # -- planning -------------------------------------------------------------------------------
    def inception_all(self) -> bool:
        if self.opts.inception_all is not None:
            return self.opts.inception_all
        # Without MNIST FD there is nothing to pick the top K by: score them all.
        return self.device.type == "cuda" or not any("mnist_fd" in m.columns for m in self.metrics)

    def plan_line(self) -> str:
        o = self.opts
        passes = [h.name for h, _ in shared_passes(list(self.extractors.values()))]  # sFID rides on FID's pass
        return plan_line(len(self.series.sources), o.num_samples, self.device.type, o.precision, passes,
                         o.metrics, self.inception_all(), o.inception_top_k, o.resize, self.dist.world)

    # -- work ---------------------------------------------------------------------------------------
    def _progress(self, total: int, desc: str) -> Any:
        from tqdm import tqdm

        disable = not (self.opts.progress and self.dist.is_main)
        return tqdm(total=total, unit="img", desc=desc, file=sys.stderr, disable=disable, leave=False)

    def _row(self, src: Source) -> dict[str, Any]:
        return self.rows.setdefault(src.name, {
            "iteration": src.iteration, "checkpoint": src.name, "path": str(src.path) if src.path else None,
            "n_samples": self.opts.num_samples, "status": "ok", "error": None, "seconds": 0.0,
        })

    def run_stage(self, sources: list[Source], names: list[str], stage: str, n: int | None = None) -> None:
        """Extract and score ``sources`` with the extractors ``names``, ``n`` samples each (default: --num-samples)."""
        exs = [self.extractors[n] for n in names]
        n = self.opts.num_samples if n is None else n
        for i, src in enumerate(sources, 1):
            row = self._row(src)
            if row["status"] == "error":
                continue
            t0 = time.time()
            desc = f"{stage} {i}/{len(sources)} {src.name}"
            try:
                with self._progress(n, desc) as bar:
                    got = extract(src, exs, n, self.opts.seed, self.opts.batch_size,
                                  self.device, self.dist, self.opts.use_cache, bar)
            except GanevalError as exc:
                row.update(status="error", error=str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one bad checkpoint never stops the others
                row.update(status="error", error=f"{src.name}: {one_line(exc)}")
                continue
            row["sha256"] = got.sha256 or None
            self._source_info(src, row, got)
            if got.grid is not None:
                self.grids[src.name] = got.grid
            if self.opts.keep_features:
                self.kept.setdefault(src.name, {}).update({n: got.pool[n] for n in names})
            try:
                self._metrics(src, row, got, names)
            except ShareFailed as exc:  # the generator or network raised in a later pass (path lengths): the source failed
                row.update(status="error", error=str(exc))
            row["seconds"] = round(row["seconds"] + time.time() - t0, 2)

    def _source_info(self, src: Source, row: dict[str, Any], got: Extracted) -> None:
        """Actual sample count, unreadable images, and the source's notes (shape, short sets, ranges)."""
        row["n_samples"] = got.n
        if got.n_bad is not None:
            row["n_bad_images"] = got.n_bad
        notes = list(got.notes)
        if "mnist" in self.extractors and got.shape is not None:
            notes.append(shape_note(got.shape))
        if got.meta and got.meta.get("format") == "state_dict":
            m = got.meta
            where = f"entry {m['state_key']!r}" if m["state_key"] else "the top-level state dict"
            notes.append(f"weight files loaded into {m['generator']}({m['generator_kwargs']}) from {where} (the "
                         f"generator's module source SHA-256 {m['generator_source_sha256'][:16]})")
        if not (got.paired and got.n == self.opts.num_samples):
            self.own_resamples.add(src.name)
        else:  # a generator at full N: paired with those of its latent size and type
            self.latents[src.name] = f"latent size {got.meta.get('latent_dim')}, {got.meta.get('z_type')}"
        if not got.paired and src.name not in self.unpaired and (self.floor is None or src is not self.floor[0]):
            self.unpaired.append(src.name)
            if len(self.unpaired) == 1:
                notes.append("stored samples have no latent control, so no paired bootstrap: their intervals come from "
                             "resampling each sample set's own images, and differences between sample sets use independent "
                             "resamples (wider than paired intervals)")
        self.notes += [n for n in dict.fromkeys(notes) if n and n not in self.notes]

    def _boot_idx(self, got: Extracted) -> list[np.ndarray]:
        """The shared (paired) resampled indices, or this sample set's own, seeded by its content."""
        if got.paired and got.n == self.opts.num_samples:
            return self.boot_idx
        rng = np.random.default_rng([self.opts.seed + 1, int((got.sha256 or "0")[:12], 16)])
        return [rng.integers(0, got.n, got.n) for _ in range(self.opts.bootstrap)]

    def _metrics(self, src: Source, row: dict[str, Any], got: Extracted, names: list[str]) -> None:
        if got.nonfinite:
            row["status"] = "nan_samples"
            row["error"] = f"{got.nonfinite} of {got.n} samples contain NaN/Inf"
        options = self._metric_inputs()
        for metric in (m for m in self.metrics if m.extractor in names):
            if got.nonfinite:
                for col in metric.columns:
                    row[col] = float("inf") if col in FD_COLUMN.values() else float("nan")
                continue
            logits = got.logits.get(metric.extractor)
            if metric.needs_logits and logits is None:
                for col in metric.columns:
                    row[col] = float("nan")
                if metric.extractor == "custom":
                    note = f"{metric.name} unavailable: your feature network returns no logits (return (features, logits))"
                    self.notes += [note] if note not in self.notes else []
                continue
            ref_sha = str(self.ref_meta[metric.extractor].get("file_sha256"))
            col = FD_COLUMN.get(metric.extractor)
            with_ci = col == metric.columns[0] and self.opts.bootstrap > 0
            cacheable = self.opts.use_cache and metric.extractor in got.keys
            mopts = metric_options(self.opts, self.copy_sets.get("ids", {}), metric, with_ci, got.paired and got.n == self.opts.num_samples,
                                   real_n=min(got.n, 60_000))
            mkey = metric_key(got.keys[metric.extractor], ref_sha, metric.name, mopts) if cacheable else ""
            hit = load_metric(mkey) if cacheable else None
            if cacheable and not self.dist.all_ok(hit is not None and set(metric.columns) <= set(hit[0])):
                hit = None  # a miss on some rank (path lengths gather), or cached before the metric gained a column
            if hit is not None:
                values, reps = hit
            else:
                values, reps = self._compute(metric, got, logits, options, with_ci, src)
                if cacheable and self.dist.is_main and not math.isnan(values[metric.columns[0]]):  # NaN: unavailable
                    unsaved = save_metric(mkey, values, reps)
                    self.notes += [unsaved] if unsaved and unsaved not in self.notes else []
            row.update(values)
            self._kid_spread(metric, row, got.n)
            if reps is not None:  # an FD's, or those a metric kept of its first column (for compare's differences)
                self.replicates.setdefault(src.name, {})[metric.columns[0]] = reps
            if with_ci:
                row[f"{col}_ci_low"], row[f"{col}_ci_high"] = ranking.bootstrap_interval(  # a distance: never below 0
                row[col], reps if reps is not None else np.array([]), self.opts.ci, floor=0.0)

    def _kid_spread(self, metric: Metric, row: dict[str, Any], n: int) -> None:
        """Empty a KID's "± sd over subsets" when every subset is the whole sample set against the same real images
        (N ≤ kid_subset_size): the subsets then differ only in order, and their spread (≈ 1e-7) is float round-off,
        not sampling noise."""
        std = next((c for c in metric.columns if c.endswith("kid_std")), None)
        if std is None or not math.isfinite(row.get(std, math.nan)):
            return
        if n <= self.opts.kid_subset_size and self._real_n(metric.extractor, n) == n:
            row[std] = float("nan")
            note = (f"{std} left empty where N ≤ the KID subset size ({self.opts.kid_subset_size}): every subset is then all "
                    "N samples against all N real images, so the subsets differ only in order and have no spread to report")
            self.notes += [note] if note not in self.notes else []

    def _compute(self, metric: Metric, got: Extracted, logits: torch.Tensor | None, options: dict[str, Any],
                 with_ci: bool, src: Source) -> tuple[dict[str, float], np.ndarray | None]:
        x = MetricInput(got.pool[metric.extractor], logits, self.refs.get(metric.extractor),
                        lambda e=metric.extractor: self._real_for(e, n=got.n), options,
                        getattr(self.extractors[metric.extractor], "head", None),  # optional: classifying extractors
                        lambda name, e=metric.extractor: self._dataset_for(e, name), self.memo,
                        self._boot_idx(got) if self.opts.bootstrap > 0 else [],
                        lambda e=metric.extractor: None if self.floor and src is self.floor[0] else source_path_lengths(
                            src, self.extractors[e], self.opts.num_samples, self.opts.seed, self.opts.batch_size, self.device, self.dist))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = metric.fn(x)
        except ShareFailed:
            raise
        except GanevalError as exc:
            if f"{metric.name} unavailable: {exc}" not in self.notes:
                self.notes.append(f"{metric.name} unavailable: {exc}")
            return {c: float("nan") for c in metric.columns}, None
        reps = x.replicates.get(metric.columns[0])
        if with_ci and math.isfinite(values[metric.columns[0]]):
            reps = bootstrap_fid(got.pool[metric.extractor], self.refs[metric.extractor], self._boot_idx(got))
        return values, reps

    def table(self) -> pd.DataFrame:
        df = pd.DataFrame([{k: printable(v) if isinstance(v, str) else v for k, v in self.rows[s.name].items()}
                           for s in self.series.sources])  # paths and errors naming a file that is not UTF-8
        for m in self.metrics:
            for col in m.columns:
                if col not in df:
                    df[col] = np.nan
        fds = [m.columns[0] for m in self.metrics if m.columns[0] == FD_COLUMN.get(m.extractor)]  # only FDs this run has
        for col in (f"{fd}_ci_{end}" for fd in dict.fromkeys(fds) for end in ("low", "high")):
            if col not in df:
                df[col] = np.nan
        for col in ("iteration", "modes_covered"):  # counts stay integers when a row has none (not 300.0)
            if col in df:
                df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
        return df


def score_series(series: Series, opts: ScoreOptions, dist: DistContext | None = None) -> ScoreResult:
    """Score a resolved series (see ``score``): ``opts.threads`` threads, float32 (TF32 for tf32), the caller's RNG kept."""
    opts.check(*series.stored_images(opts.num_samples, opts.batch_size))  # a stored set's first N images counted with their features
    with cpu_threads(opts.threads), float32_mode(opts.precision), torch.random.fork_rng(devices=[]):
        return _score_series(series, opts, dist)


def _score_series(series: Series, opts: ScoreOptions, dist: DistContext | None) -> ScoreResult:
    dist = dist or DistContext()
    ev = _Evaluator(series, opts, dist)
    if dist.is_main and opts.progress:
        print(ev.plan_line(), file=sys.stderr)
        for note in ev.notes:
            print(f"note: {note}", file=sys.stderr)
    printed = len(ev.notes)
    t0 = time.time()
    cheap = [n for n in ev.extractors if n not in INCEPTION_EXTRACTORS or ev.inception_all()]
    if cheap:
        ev.run_stage(series.sources, cheap, "MNIST" if cheap == ["mnist"] else "features")
    if heavy := [n for n in ev.extractors if n not in cheap]:
        ok = [s for s in series.sources if ev.rows[s.name]["status"] == "ok"]
        ok.sort(key=lambda s: ev.rows[s.name].get("mnist_fd", np.inf))
        chosen = ok[: opts.inception_top_k]
        last = series.sources[-1]
        if last not in chosen and ev.rows[last.name]["status"] != "error":
            chosen.append(last)
        chosen.sort(key=lambda s: series.sources.index(s))
        ev.run_stage(chosen, heavy, "Inception")
    floor = ev.score_floor()
    ev.notes += [n for n in (ranking.sizes_note(ev.scored_sizes()), ranking.latents_note(ev.latents)) if n]
    if dist.is_main and opts.progress:
        for note in ev.notes[printed:]:
            print(f"note: {note}", file=sys.stderr)
    df = ev.table()
    primary = ranking.primary_metric(df, opts.primary)
    if primary not in df:
        raise GanevalError(f"primary metric {primary!r} was not computed (metrics: {', '.join(opts.metrics)})")
    df = ranking.add_ranks(df, primary)
    df["mode_collapse"] = ranking.mode_collapse_rows(df, opts.min_modes, opts.max_class_kl)
    df["mode_collapse_sure"] = df["mode_collapse"] & ranking.mode_collapse_beyond_noise(df, opts.min_modes, opts.max_class_kl)
    df["data_copying"] = ranking.copying_rows(df, opts.copying_threshold)
    late = ranking.late_collapse(df, primary, ev.replicates, opts.late_threshold, opts.ci)
    if "ci_low" in late and late.get("interval") != "normal":  # resampled: paired when both share latents at full N
        late["paired"] = (not {late.get("last"), late.get("best")} & ev.own_resamples
                          and ev.latents.get(late.get("last")) == ev.latents.get(late.get("best")))
    provenance = {name: {**ex.provenance(), **(reference_provenance(ev.ref_meta[name]) if ev.ref_meta[name] else {}),
                         **ev.real_provenance(name)}  # no reference read: none named
                  for name, ex in ev.extractors.items()}
    notes = [printable(n) for n in ev.notes]
    summary = build_summary(df, primary, late, opts, provenance, notes, time.time() - t0, dist.world, floor)
    apart = ev.own_resamples | ranking.off_the_run_latents(ev.latents)
    summary["bootstrap"]["unpaired"] = [s.name for s in series.sources if s.name in apart]
    failed = bool((df["status"] == "error").any())
    result = ScoreResult(df, summary, ev.grids, ev.replicates, failed, features=ev.kept, refs=ev.refs, latents=ev.latents)
    sets = ev.copy_sets.get("options", {})
    if sets.get("copy_train") and dist.is_main and not df.empty:
        samples = {name: ev.closest_samples(name) for name in shown_checkpoints(df)}
        held = ev.memo.get("closest-heldout")
        result.neighbours, result.neighbour_scale = report_neighbours(
            {k: v for k, v in samples.items() if v is not None}, sets["copy_train"], sets.get("copy_heldout"), held)
    if dist.is_main and not df.empty:
        result.realism = {n: ex for n in shown_checkpoints(df) if (ex := ev.realism_examples(n)) is not None}
    return result


def score(target: Any, out: str | os.PathLike[str] | None = None, write_report: bool = False,
          distributed: bool | None = None, *, z_dim: int | None = None, z_type: str | None = None,
          output_range: str | None = None, cache_key: str | None = None, generator: Any = None,
          generator_kwargs: Any = None, state_key: str | None = None, recursive: bool | None = None,
          **options: Any) -> pd.DataFrame:
    """Score ``target``; one row per checkpoint/generator/sample set, in iteration order.

    ``target``: a checkpoint, TorchScript (.pt/.ts) or ONNX file, a folder of them, a folder/zip/.npz of
    samples, a list of such paths (a series), a callable ``z -> images`` or an image array (docs/inputs.md).
    ``z_dim``/``z_type``/``output_range`` describe generators whose files do not say (``options["extra"]``
    may carry them too, as the CLI does); a callable is cached only under ``cache_key``. ``generator`` (a class,
    ``"MODULE:NAME"`` or ``"file.py:NAME"``) with ``generator_kwargs`` and ``state_key`` scores weight files saved
    from your own generator class (``torch.save(G.state_dict(), ...)``; docs/inputs.md); ``recursive=True`` reads a
    folder of samples with its whole tree. A hint no source reads is refused.
    The summary (best, verdicts, provenance, notes) is in ``df.attrs["summary"]``. With ``write_report=True``
    (or ``out`` given) the reports are written (default: a folder's ``report/``, picked files' ``report_<stems>/``),
    by rank 0 only.
    """
    opts = ScoreOptions.from_kwargs(**options)
    opts.check()  # bad options are refused before the target is read
    given = {"z_dim": z_dim, "z_type": z_type, "output_range": output_range, "cache_key": cache_key,
             "generator": generator, "generator_kwargs": generator_kwargs, "state_key": state_key, "recursive": recursive}
    hints = {**{k: v for k, v in opts.extra.items() if k in HINT_KEYS and v is not None},
             **{k: v for k, v in given.items() if v is not None}}
    opts.extra = {**opts.extra, **hints}
    dist = from_env(distributed)
    series = resolve_target(target, **hints)
    check_hints_read([series], hints)  # a --z-dim of a ganeval checkpoint or a sample set: read by none of them
    folder = report_folder(out, series.report_dir) if require_bool(write_report, "write_report") or out is not None else None
    result = score_series(series, opts, dist)
    from ganeval.report import in_column_order, write_reports

    if folder is not None and dist.all_ok(True) and dist.is_main:
        paths = write_reports(result, folder)
        result.summary["report"] = {k: str(v) for k, v in paths.items()}
    df = in_column_order(result.table)  # the documented order, as in scores.csv, whatever the order of the metrics
    df.attrs["summary"] = result.summary
    df.attrs["failed"] = result.failed
    return df
