"""The HTML report: self-contained, parseable, escaped, with decodable embedded images; and ``write_reports``."""

from __future__ import annotations

import base64
import io
import json
import math
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ganeval.report import write_reports
from ganeval.report.html import render_html
from ganeval.report.table import fmt
from ganeval.score_result import ScoreResult

EVIL = "<script>alert(1)</script>ckpt"
VERDICT = "Keep iter_000300.pt (iteration 300): it has the best fid (12.3)."


def _digits(rng: np.random.Generator, n: int = 30) -> np.ndarray:
    """MNIST-like uint8 samples (an anti-aliased ring on black), so image sizes are realistic, unlike pure noise."""
    yy, xx = np.mgrid[0:28, 0:28].astype(float)
    cy, cx, ry, rx = (rng.uniform(lo, hi, (n, 1, 1)) for lo, hi in ((10, 18), (10, 18), (4, 9), (2, 6)))
    r = np.hypot((yy - cy) / ry, (xx - cx) / rx)
    return (255 * np.exp(-((r - 1) ** 2) / 0.05)).astype(np.uint8)


def make_result(n: int = 5, seed: int = 0) -> ScoreResult:
    """A hand-built result: ``n`` checkpoints, the second fails (error), the fourth has NaN samples (inf FID),
    the third is named ``EVIL``; the best is in the middle, not last."""
    rng = np.random.default_rng(seed)
    names = [f"iter_{100 * (i + 1):06d}.pt" for i in range(n)]
    names[min(2, n - 1)] = EVIL
    fid = np.linspace(40, 10, n) + rng.normal(0, 0.5, n)
    fid[-1] = fid[n // 2] + 8  # training goes bad at the end: best ≠ last
    mfd = fid / 10
    rows = []
    for i, name in enumerate(names):
        rows.append({
            "iteration": 100 * (i + 1), "checkpoint": name, "path": f"/runs/{name}", "n_samples": 1000,
            "fid": fid[i], "fid_ci_low": fid[i] - 1, "fid_ci_high": fid[i] + 1.5, "is_mean": 2.0, "is_std": 0.05,
            "kid_mean": 0.012345678, "kid_std": 0.00123, "precision": 0.6, "recall": 0.5, "mnist_is": 9.1, "mnist_is_std": 0.1,
            "mnist_fd": mfd[i], "mnist_fd_ci_low": mfd[i] * 0.9, "mnist_fd_ci_high": mfd[i] * 1.1, "modes_covered": 10,
            "class_kl": 0.01, "mnist_confidence": 0.95, "status": "ok", "error": None, "seconds": 1.25,
        })
    err = rows[1]
    for k in list(err):
        if k not in ("iteration", "checkpoint", "path", "n_samples", "status", "error", "seconds"):
            err[k] = np.nan
    err.update(status="error", error="iter_000200.pt: RuntimeError: size mismatch <b>& 'quotes'</b>")
    if n > 3:
        bad = rows[3]
        for k in bad:
            if k in ("fid", "mnist_fd"):
                bad[k] = math.inf
            elif k.endswith(("_ci_low", "_ci_high")) or k in ("is_mean", "is_std", "kid_mean", "kid_std", "precision",
                                                             "recall", "mnist_is", "mnist_is_std", "modes_covered",
                                                             "class_kl", "mnist_confidence"):
                bad[k] = np.nan
        bad.update(status="nan_samples", error="1000 of 1000 samples contain NaN/Inf")
    df = pd.DataFrame(rows)
    ok = df["status"] != "error"
    ranks = df["fid"].where(ok).rank(method="first")
    df["rank"] = pd.array([pd.NA if math.isnan(r) else int(r) for r in ranks], dtype="Int64")
    df["is_best"] = (df["rank"] == 1).fillna(False).astype(bool)
    df["mode_collapse"] = False
    best = df.loc[df["is_best"], "checkpoint"].iloc[0]
    summary = {
        "schema": 1, "ganeval_version": "0.1.0", "date": "2024-01-01T00:00:00Z", "primary_metric": "fid",
        "verdict": VERDICT,
        "late_collapse": {"flag": True, "metric": "fid", "threshold": 0.1, "best": best, "last": names[-1],
                          "difference": 3.5, "relative": 0.25, "ci_low": 1.0, "ci_high": 6.0, "ci_level": 0.95},
        "mode_collapse": {"flag": True, "checkpoints": [EVIL], "min_modes": 10, "max_class_kl": 0.1},
        "n_checkpoints": n, "n_errors": 1, "n_samples": 1000, "seed": 0, "reference": "mnist-train", "precision": "fp32",
        "bootstrap": {"replicates": 100, "level": 0.95, "method": "basic bootstrap, paired sample indices"},
        "provenance": {"mnist": {"extractor": "mnist", "weights_sha256": "ab" * 32, "weights_source": "bundled",
                                 "resize": "none", "channels": "gray", "precision": "fp32", "reference": "mnist-train",
                                 "reference_sha256": "cd" * 32, "reference_n": 60000}},
        "options": {"num_samples": 1000, "seed": 0, "metrics": ["fid", "mnist_fd"]},
        "notes": ["N=1000 is below the Inception feature dimension <2048>"],
        "seconds": 12.5, "world_size": 1,
    }
    grids = {name: _digits(rng) for i, name in enumerate(names) if i != 1}
    return ScoreResult(df, summary, grids, {}, failed=True)


class _Collector(HTMLParser):
    """Collects start tags with attributes, the rows of the ``scores`` table, and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.score_rows = 0
        self._in_scores = False
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._depth += 1
            if a.get("id") == "scores":
                self._in_scores, self._depth = True, 1
        if tag == "tr" and self._in_scores:
            self.score_rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._in_scores:
            self._depth -= 1
            self._in_scores = self._depth > 0

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Collector:
    p = _Collector()
    p.feed(page)
    p.close()
    return p


def _data_uris(p: _Collector, mime: str) -> list[bytes]:
    prefix = f"data:{mime};base64,"
    return [base64.b64decode(a["src"][len(prefix):], validate=True) for tag, a in p.tags
            if tag == "img" and (a.get("src") or "").startswith(prefix)]


def test_page_structure_and_content() -> None:
    result = make_result()
    page = render_html(result)
    p = _parse(page)
    text = "".join(p.text)
    for tag, attrs in p.tags:
        for key in ("src", "href", "action"):
            val = attrs.get(key) or ""
            assert not val.startswith(("http://", "https://", "//")), (tag, key, val[:80])
    assert "http://" not in page and "https://" not in page
    assert not any(tag in ("script", "link", "iframe") for tag, _ in p.tags)
    assert VERDICT in text
    assert p.score_rows == len(result.table) + 1
    # user strings are escaped: the text round-trips, the raw tags never appear
    assert "<script>" not in page and "<b>&" not in page
    assert EVIL in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;ckpt" in page
    assert "size mismatch <b>& 'quotes'</b>" in text
    assert "N=1000 is below the Inception feature dimension <2048>" in text
    # provenance, flags, NaN/inf rendering, row classes
    assert "ab" * 32 in text and "cd" * 32 in text and "60000" in text
    assert "FLAG" in text and "paired CI [1, 6]" in text
    assert "∞" in text and "—" in text
    classes = [a.get("class") for tag, a in p.tags if tag == "tr" and a.get("class")]
    assert classes.count("best") == 1 and classes.count("error") == 1 and classes.count("nan") == 1


def test_embedded_images_decode() -> None:
    result = make_result()
    p = _parse(render_html(result))
    pngs = _data_uris(p, "image/png")
    assert len(pngs) == 4  # the two plots (distances; fidelity and diversity), the best grid, the last grid
    sizes = [Image.open(io.BytesIO(b)).size for b in pngs]
    assert all(w > 300 and h > 100 for w, h in sizes)
    gifs = _data_uris(p, "image/gif")
    assert len(gifs) == 1
    gif = Image.open(io.BytesIO(gifs[0]))
    assert gif.format == "GIF" and gif.n_frames == len(result.grids)


def test_all_nan_fid_and_single_files_do_not_crash() -> None:
    result = make_result()
    df = result.table
    for col in ("fid", "fid_ci_low", "fid_ci_high", "is_mean", "is_std", "kid_mean", "kid_std"):
        df[col] = np.nan
    df["iteration"] = None
    result.summary["late_collapse"] = {"flag": False, "metric": "mnist_fd", "reason": "no checkpoint has fid"}
    p = _parse(render_html(result))
    assert len(_data_uris(p, "image/png")) == 4  # the MNIST FD panel is still drawn; so is precision/recall by row order
    assert "fid: not computed for any checkpoint, panel skipped." in "".join(p.text)
    df["mnist_fd"] = np.nan
    p = _parse(render_html(result))
    assert "No FID or MNIST FD values to plot." in "".join(p.text)
    assert p.score_rows == len(df) + 1


def test_a_metric_never_asked_for_is_not_called_skipped() -> None:
    """Without `fid` in --metrics there is no fid column: the caption says nothing about FID (it said "fid: not
    computed for any checkpoint, panel skipped" for every MNIST-only run)."""
    result = make_result()
    result.table = result.table.drop(columns=["fid", "fid_ci_low", "fid_ci_high", "is_mean", "is_std", "kid_mean",
                                              "kid_std", "precision", "recall"])
    result.summary["late_collapse"] = {"flag": False, "metric": "mnist_fd", "reason": "the last checkpoint is the best"}
    text = "".join(_parse(render_html(result)).text)
    assert "panel skipped" not in text


def test_last_is_the_judged_checkpoint_when_the_newest_file_is_unreadable() -> None:
    """The verdict judges the last *scored* checkpoint when the newest file cannot be read; the page showed "last: no
    samples for" the unreadable file, noted that "the last checkpoint has no finite value" and drew the fidelity plot's
    "last" line past the data. All three now mark the judged checkpoint, and a caption names the unreadable file."""
    from matplotlib.figure import Figure

    from ganeval.report.plots import series_plot
    from ganeval.report.tradeoff_plot import _marks

    result = make_result(3)
    broken = result.table.iloc[[1]].assign(iteration=400, checkpoint="iter_000400.pt", path="/runs/iter_000400.pt")
    result.table = df = pd.concat([result.table, broken], ignore_index=True)
    judged = str(df["checkpoint"].iloc[2])
    page = render_html(result)
    text = "".join(_parse(page).text)
    assert f"last: <code>{escape(judged)}</code>" in page and "no samples for" not in page
    assert "The newest file iter_000400.pt could not be scored" in text
    notes = series_plot(df).notes
    assert not any("has no finite value" in n for n in notes) and any("iter_000400.pt could not be scored" in n for n in notes)
    ax = Figure().subplots()
    _marks(ax, df, df["iteration"].to_numpy(dtype=float), labelled=True)
    last = [line for line in ax.get_lines() if str(line.get_label()).startswith("last:")]
    assert len(last) == 1 and last[0].get_xdata()[0] == 300 and judged[-10:] in str(last[0].get_label())


def test_minimal_result_without_grids() -> None:
    df = pd.DataFrame({"iteration": [None], "checkpoint": ["g.pt"], "status": ["error"], "error": ["boom"]})
    page = render_html(ScoreResult(df, {"verdict": "No checkpoint could be scored."}, {}, {}, failed=True))
    p = _parse(page)
    text = "".join(p.text)
    assert p.score_rows == 2 and "no samples for g.pt" in text and "boom" in text
    assert not _data_uris(p, "image/png") and not _data_uris(p, "image/gif")


@pytest.mark.parametrize(("x", "spec", "want"), [(np.nan, ".2f", "—"), (None, ".2f", "—"), (pd.NA, "int", "—"),
                                                 (math.inf, ".2f", "∞"), (12.3456, ".2f", "12.35"),
                                                 (0.012345678, "sig4", "0.01235"), ("inf", ".2f", "∞")])
def test_fmt(x: object, spec: str, want: str) -> None:
    assert fmt(x, spec) == want


def test_page_size_for_30_checkpoints() -> None:
    result = make_result(30)
    assert len(render_html(result).encode()) < 500_000


def _strict(token: str) -> None:
    raise ValueError(f"non-standard JSON constant {token}")


def test_write_reports(tmp_path: Path) -> None:
    result = make_result()
    paths = write_reports(result, tmp_path)
    assert set(paths) == {"csv", "parquet", "json", "html"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
    summary = json.loads(paths["json"].read_text(), parse_constant=_strict)
    assert summary["verdict"] == VERDICT and summary["report"]["html"] == str(paths["html"])
    back = pd.read_parquet(paths["parquet"])
    assert list(back["checkpoint"]) == list(result.table["checkpoint"])
    assert math.isinf(back["fid"].iloc[3]) and back["status"].iloc[1] == "error"
    csv = pd.read_csv(paths["csv"])
    assert len(csv) == len(result.table) and list(csv.columns[:3]) == ["iteration", "checkpoint", "n_samples"]
    assert "<!DOCTYPE html>" in paths["html"].read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_parquet_carries_the_provenance(tmp_path: Path) -> None:
    """scores.parquet says how its numbers were made (extractor, weights SHA-256, reference, N, seed), as summary.json
    does, in its key-value metadata; pandas still reads it as before."""
    import pyarrow.parquet as pq

    result = make_result()
    paths = write_reports(result, tmp_path)
    prov = json.loads(pq.read_schema(paths["parquet"]).metadata[b"ganeval"])
    summary = json.loads(paths["json"].read_text())
    assert prov["provenance"] == summary["provenance"] and prov["provenance"]["mnist"]["weights_sha256"] == "ab" * 32
    assert (prov["n_samples"], prov["seed"], prov["reference"], prov["bootstrap"]) == (1000, 0, "mnist-train", summary["bootstrap"])
    assert pd.read_parquet(paths["parquet"])["checkpoint"].tolist() == result.table["checkpoint"].tolist()


def test_write_reports_with_real_summary(tmp_path: Path) -> None:
    """The summary as ``score`` builds it (ranks, late collapse, NaN/inf rows, single files) is strict JSON."""
    from ganeval import ranking
    from ganeval.options import ScoreOptions
    from ganeval.summary import build_summary

    result = make_result()
    df = ranking.add_ranks(result.table.drop(columns=["rank", "is_best", "mode_collapse"]), "fid")
    df["iteration"] = None
    df["mode_collapse"] = ranking.mode_collapse_rows(df, 10, 0.1)
    reps = {n: {"fid": np.random.default_rng(0).normal(20, 1, 50) + i} for i, n in enumerate(df["checkpoint"])}
    late = ranking.late_collapse(df, "fid", reps, 0.1, 0.95)
    opts = ScoreOptions(num_samples=1000)
    result.table = df
    result.summary = build_summary(df, "fid", late, opts, result.summary["provenance"], ["a note"], 1.0, 1)
    paths = write_reports(result, tmp_path)
    summary = json.loads(paths["json"].read_text(), parse_constant=_strict)
    assert summary["rows"][3]["fid"] == "inf" and summary["late_collapse"]["flag"] is True
    p = _parse(paths["html"].read_text(encoding="utf-8"))
    assert summary["verdict"] in "".join(p.text) and p.score_rows == len(df) + 1


def test_summary_with_unbounded_mode_limits_is_strict_json(tmp_path: Path) -> None:
    """``max_class_kl=inf`` ("never flag on class KL") once scored everything, then died writing summary.json."""
    from ganeval import ranking
    from ganeval.options import ScoreOptions
    from ganeval.summary import build_summary

    result = make_result()
    df = ranking.add_ranks(result.table.drop(columns=["rank", "is_best", "mode_collapse"]), "fid")
    df["mode_collapse"] = ranking.mode_collapse_rows(df, 10, math.inf)
    late = ranking.late_collapse(df, "fid", {}, 0.1, 0.95)
    result.table = df
    result.summary = build_summary(df, "fid", late, ScoreOptions(num_samples=1000, max_class_kl=math.inf),
                                   result.summary["provenance"], [], 1.0, 1)
    summary = json.loads(write_reports(result, tmp_path)["json"].read_text(), parse_constant=_strict)
    assert summary["mode_collapse"]["max_class_kl"] == "inf" and summary["mode_collapse"]["min_modes"] == 10


def test_one_checkpoint_still_shows_its_interval_and_long_names_keep_their_ends() -> None:
    from matplotlib.figure import Figure

    from ganeval.report.plots import _panel, mpl_text

    df = pd.DataFrame({"checkpoint": ["only.npz"], "iteration": [np.nan], "fid": [20.0], "fid_ci_low": [18.0],
                       "fid_ci_high": [23.0], "is_best": [True]})
    ax = Figure().subplots()
    _panel(ax, df, np.array([0.0]), "fid", "fid_ci_low", "fid_ci_high", "FID", [])
    (band,) = [c for c in ax.collections if c.get_label() == "bootstrap CI"]  # a band of one point has no width
    (segment,) = band.get_segments()
    assert segment[:, 1].tolist() == [18.0, 23.0]
    a, b = mpl_text("experiment_lr0.0002_beta0.5_seed1_ckpt_0001.pt", 18), mpl_text("experiment_lr0.0002_beta0.5_seed1_ckpt_0002.pt", 18)
    assert a != b and len(a) == 18 and a.startswith("experime…") and a.endswith("t_0001.pt")


def test_rgb_sample_grids_show_every_channel() -> None:
    """An RGB sample set's grid showed its first channel only: green or blue digits were black squares. Grids show
    the luma (what the MNIST classifier sees): grey RGB is its grey, green digits are visible, in either layout."""
    from ganeval.report.images import mosaic

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    assert np.array_equal(mosaic(np.repeat(grey[..., None], 3, axis=-1)), mosaic(grey))
    green = np.zeros((30, 28, 28, 3), np.uint8)
    green[..., 1] = grey
    for layout in (green, green.transpose(0, 3, 1, 2)):
        shown = mosaic(layout, scale=1)
        assert np.array_equal(shown, mosaic(np.round(grey * 0.587).astype(np.uint8), scale=1))
