"""Which way is better for each result column (ranking, the gate and compare read this one table), and display names."""

from __future__ import annotations

#: Columns where a larger value is better; the other ranked columns are distances, lower is better.
#: Density and the copying test's C_T have an ideal value (1 and 0), not a direction.
HIGHER_BETTER = frozenset({"is_mean", "mnist_is", "precision", "recall", "coverage", "modes_covered", "custom_is",
                           "custom_precision", "custom_recall", "custom_coverage", "realism", "mnist_realism",
                           "mnist_precision", "mnist_recall", "mnist_coverage"})
#: How verdicts and reports name the Fréchet distances.
LABELS = {"fid": "FID", "mnist_fd": "MNIST FD", "custom_fd": "FD (your network)", "mnist_ppl": "MNIST PPL",
          "custom_ppl": "PPL (your network)"}
#: compare's words for a difference beyond noise (negative, positive): path length is a smoothness reading, not
#: a quality score, so its differences are not called better or worse.
DIFFERENCE_WORDS = {"mnist_ppl": ("shorter paths", "longer paths"), "custom_ppl": ("shorter paths", "longer paths")}
#: How a difference plot's axis reads the sign.
SIGN_NOTE = {"mnist_ppl": "lower: smoother latent space", "custom_ppl": "lower: smoother latent space"}
