"""An output folder that is a link to nothing (its target moved or deleted): refused before any work, in one line
naming the link. ``exists()`` is False for such a link, so the checks passed over it and ``mkdir`` failed on it
after the scoring ("File exists")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ganeval.atomic import output_file, output_folder, report_folder
from ganeval.errors import GanevalError

CKPT = Path(__file__).resolve().parent.parent / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"


@pytest.mark.parametrize("sub", ["", "report"])
def test_a_dangling_link_is_refused_before_scoring(tmp_path: Path, cli: Any, sub: str) -> None:
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "moved-away")
    out = link / sub if sub else link
    code, stdout, err = cli("score", CKPT, "--metrics", "mnist_fd", "--num-samples", 50, "--bootstrap", 0,
                            "--device", "cpu", "--no-progress", "--out", out)
    assert code == 2 and err.strip() == f"ganeval: error: {link}: is a link to nothing; reports need a folder at {out}"
    assert "plan:" not in stdout + err  # nothing scored
    for check in (lambda: output_folder(out, "--out"), lambda: report_folder(out, out),
                  lambda: output_file(link / "x.json", "--junit")):
        with pytest.raises(GanevalError, match="link to nothing"):
            check()
    assert link.is_symlink() and not (tmp_path / "moved-away").exists()
