"""What a non-editable install carries: ``pip install ganeval`` (docs/ci.md) must find the shipped reference
statistics, which live at the source tree's top level (``reference_stats/``) and travel in the wheel as
``ganeval/reference_stats``. A wheel without them scored nothing against ``mnist-train``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_of_the_source_tree_is_listed_in_pyproject() -> None:
    """``packages`` is a list (the statistics folder needs a package-dir mapping): a new subpackage must join it."""
    from setuptools.config.pyprojecttoml import read_configuration  # reads TOML on Python 3.10 too

    listed = set(read_configuration(ROOT / "pyproject.toml")["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.relative_to(ROOT).parts) for p in (ROOT / "ganeval").rglob("*")
               if p.is_dir() and "__pycache__" not in p.parts and any(f.is_file() for f in p.iterdir())}
    assert on_disk | {"ganeval", "ganeval.reference_stats"} == listed


def test_an_installed_wheel_scores_against_its_shipped_statistics(tmp_path: Path) -> None:
    wheels, site, src = tmp_path / "wheels", tmp_path / "site", tmp_path / "src"
    for part in ("ganeval", "reference_stats"):  # a copy: building in the tree would leave build/ and egg-info there
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, src / part)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                            str(wheels), str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("ganeval-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"ganeval/reference_stats/{p.name}" for p in (ROOT / "reference_stats").iterdir()}
    assert shipped and shipped <= names
    assert "ganeval/pretrained/dcgan_info/ckpt_0010000.safetensors" in names
    zipfile.ZipFile(wheel).extractall(site)  # what pip puts in site-packages, without touching this environment
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    probe = subprocess.run([sys.executable, "-c", "import ganeval, ganeval.stats as s; print(ganeval.__file__); "
                            "print(s.SHIPPED_DIR)"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    where, shipped_dir = probe.stdout.split()
    assert Path(where).is_relative_to(site) and Path(shipped_dir) == site / "ganeval" / "reference_stats"
    ckpt = site / "ganeval" / "pretrained" / "dcgan_info" / "ckpt_0010000.safetensors"
    score = subprocess.run([sys.executable, "-m", "ganeval", "score", str(ckpt), "--metrics", "mnist_fd",
                            "--num-samples", "200", "--out", str(tmp_path / "report")],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert score.returncode == 0, score.stderr[-2000:]
    assert (tmp_path / "report" / "scores.csv").is_file()
