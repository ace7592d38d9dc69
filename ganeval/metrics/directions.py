"""Which way is better for each result column (ranking, the gate and compare read this one table), and display names."""

from __future__ import annotations

#: Columns where a larger value is better; the other ranked columns are distances, lower is better.
#: Density and the copying test's C_T have an ideal value (1 and 0), not a direction.
HIGHER_BETTER = frozenset({"is_mean", "mnist_is", "precision", "recall", "coverage", "modes_covered", "custom_is",
                           "custom_precision", "custom_recall", "custom_coverage", "realism", "mnist_realism",
                           "mnist_precision", "mnist_recall", "mnist_coverage"})
#: Columns where a smaller value is better: the distances, divergences, unrealistic shares and path lengths.
LOWER_BETTER = frozenset({"fid", "sfid", "fid_inf", "mnist_fd", "mnist_fd_inf", "custom_fd", "custom_fd_inf", "kid_mean",
                          "mnist_kid_mean", "custom_kid_mean", "class_kl", "mnist_intra_fd", "mnist_worst_digit_fd",
                          *(f"mnist_fd_digit_{d}" for d in range(10)), "unrealistic_share", "mnist_unrealistic_share",
                          "mnist_ppl", "custom_ppl"})
#: What checkpoints can be ranked by (``--primary``). Not: spreads and interval bounds, labels and counts
#: (``mnist_worst_digit``), ideal-value columns (density, C_T), and readings without a better side (Vendi,
#: the classifier's confidence).
RANKABLE = HIGHER_BETTER | LOWER_BETTER
#: How verdicts and reports name the Fréchet distances.
LABELS = {"fid": "FID", "sfid": "sFID", "mnist_fd": "MNIST FD", "custom_fd": "FD (your network)", "mnist_ppl": "MNIST PPL",
          "custom_ppl": "PPL (your network)"}
#: compare's words for a difference beyond noise (negative, positive): path length is a smoothness reading, not
#: a quality score, so its differences are not called better or worse.
DIFFERENCE_WORDS = {"mnist_ppl": ("shorter paths", "longer paths"), "custom_ppl": ("shorter paths", "longer paths")}
#: How a difference plot's axis reads the sign.
SIGN_NOTE = {"mnist_ppl": "lower: smoother latent space", "custom_ppl": "lower: smoother latent space"}
