"""Names the command's parser lists before torch is imported: the metrics, the default metric set, the precisions.

``ganeval --help``, ``--version`` and a usage error then answer without importing torch (about 1.5 s);
the metric registry checks at import that it registers exactly :data:`METRIC_NAMES`, so this list cannot drift.
"""

from __future__ import annotations

#: Every registered metric, in the registry's order (``ganeval metrics`` describes each).
METRIC_NAMES = ("fid", "sfid", "fid_inf", "mnist_fd_inf", "is", "mnist_is", "mnist_fd", "modes", "mnist_intra", "kid",
                "mnist_kid", "custom_kid", "prc", "mnist_prc", "custom_prc", "dc", "mnist_dc", "custom_dc", "vendi",
                "mnist_vendi", "mnist_realism", "realism", "mnist_ppl", "custom_ppl", "copying", "inception_copying",
                "custom_fd", "custom_fd_inf", "custom_is")
#: ``--metrics``' default.
DEFAULT_METRICS = ("fid", "is", "kid", "prc", "dc", "mnist_is", "mnist_fd", "modes", "mnist_intra", "copying")
#: Feature precisions: ``fp32`` (exact float32 everywhere), ``tf32`` (CUDA only: float32 convolutions and matrix
#: products in TensorFloat-32, faster on Ampere and later, features ~1e-3 off), ``bf16`` (autocast).
PRECISIONS = ("fp32", "tf32", "bf16")
#: The files of a score report by kind (``summary.json``, the set's mark, is written last).
REPORT_FILES = {"csv": "scores.csv", "parquet": "scores.parquet", "json": "summary.json", "html": "report.html"}
#: The files of a comparison by kind (``compare.json``, the set's mark, is written last).
COMPARE_FILES = {"members_csv": "members.csv", "members_parquet": "members.parquet", "arms_csv": "arms.csv",
                 "differences_csv": "differences.csv", "json": "compare.json", "html": "compare.html",
                 "markdown": "compare.md"}
