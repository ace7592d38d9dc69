"""Write ``scores.csv``, ``scores.parquet``, ``summary.json`` and ``report.html`` as one set (all new, or all as before)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ganeval.atomic import write_set
from ganeval.names import REPORT_FILES

if TYPE_CHECKING:
    import pandas as pd

    from ganeval.score_result import ScoreResult

#: Column order of the tables (documented in docs/scoring.md); other columns follow.
COLUMNS = [
    "iteration", "checkpoint", "n_samples", "fid", "fid_ci_low", "fid_ci_high", "fid_inf", "fid_inf_slope", "sfid", "sfid_ci_low",
    "sfid_ci_high", "is_mean", "is_std",
    "kid_mean", "kid_std", "precision", "recall", "density", "coverage", "mnist_is", "mnist_is_std", "mnist_fd", "mnist_fd_ci_low",
    "mnist_fd_ci_high", "mnist_fd_inf", "mnist_fd_inf_slope", "mnist_kid_mean", "mnist_kid_std", "mnist_precision",
    "mnist_recall", "mnist_density", "mnist_coverage", "modes_covered", "modes_ci_low", "modes_ci_high", "class_kl",
    "class_kl_ci_low", "class_kl_ci_high", "mnist_confidence", "mnist_intra_fd", "mnist_worst_digit", "mnist_worst_digit_fd",
    "mnist_intra_digits", *(f"mnist_fd_digit_{c}" for c in range(10)),
    "custom_fd", "custom_fd_ci_low", "custom_fd_ci_high", "custom_fd_inf", "custom_fd_inf_slope", "custom_is",
    "custom_is_std", "custom_kid_mean", "custom_kid_std", "custom_precision", "custom_recall", "custom_density",
    "custom_coverage", "realism", "unrealistic_share", "mnist_realism", "mnist_unrealistic_share",
    "vendi", "vendi_real", "mnist_vendi", "mnist_vendi_real", "mnist_ppl", "mnist_ppl_std", "mnist_ppl_ci_low",
    "mnist_ppl_ci_high", "custom_ppl", "custom_ppl_std", "custom_ppl_ci_low", "custom_ppl_ci_high",
    "copying_ct", "copy_share", "copying_cells",
    "inception_copying_ct", "inception_copy_share", "inception_copying_cells", "n_bad_images", "rank", "is_best",
    "mode_collapse", "mode_collapse_sure", "data_copying", "status", "error", "seconds", "path", "sha256",
]

#: Summary keys that say where the table's numbers came from; scores.parquet carries them as key-value metadata.
PROVENANCE_KEYS = ("schema", "ganeval_version", "date", "primary_metric", "n_samples", "n_scored", "seed", "reference",
                   "precision", "bootstrap", "provenance")
#: The Parquet metadata key holding them (a JSON object): ``pq.read_schema(path).metadata[b"ganeval"]``.
PARQUET_KEY = b"ganeval"


def _with_provenance(table: pa.Table, summary: dict[str, Any]) -> pa.Table:
    """``table`` with the run's provenance (extractors, weights SHA-256, reference, N, seed…, as in summary.json) in its
    schema metadata, so a scores.parquet copied away from its summary.json still says how its numbers were made."""
    prov = {k: summary[k] for k in PROVENANCE_KEYS if k in summary}
    return table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          PARQUET_KEY: json.dumps(prov, allow_nan=False).encode("utf-8")})


def in_column_order(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its columns in the documented order (``COLUMNS``, then any others), whatever the order of the
    metrics asked for: the API's table lines up with scores.csv and with another run's."""
    return df[[c for c in COLUMNS if c in df] + [c for c in df if c not in COLUMNS]]


def write_reports(result: ScoreResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write every report file into ``out_dir`` as one set; returns their paths by kind.

    Every file is encoded, then written to a temporary file, before the first is renamed into place
    (:func:`ganeval.atomic.write_set`): a value that cannot be encoded, a failed write (a full disk) or an interrupt
    (Ctrl-C, SIGTERM) leaves the earlier report whole, never new tables beside an old ``summary.json`` or page.
    ``summary.json``, the mark of a complete report, is renamed last.
    """
    from ganeval.report.html import render_html

    out = Path(out_dir)
    paths = {kind: out / name for kind, name in REPORT_FILES.items()}
    summary = {**result.summary, "report": {k: str(v) for k, v in paths.items()}}
    df = in_column_order(result.table)
    buf = io.BytesIO()
    pq.write_table(_with_provenance(pa.Table.from_pandas(df, preserve_index=False), summary), buf)
    data = {"json": (json.dumps(summary, indent=2, allow_nan=False) + "\n").encode("utf-8"),
            "csv": df.to_csv(index=False).encode("utf-8"), "parquet": buf.getvalue(),
            "html": render_html(result).encode("utf-8")}
    write_set({paths[kind]: data[kind] for kind in ("csv", "parquet", "html", "json")})  # summary.json last
    return paths
