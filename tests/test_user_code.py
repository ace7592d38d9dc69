"""Your own code (``--generator``, ``--feature-network``) is identified by the code that runs: a module edited during a
session is imported again, and a class whose source cannot be read (a notebook cell, ``python -c``) is never cached."""

from __future__ import annotations

import hashlib
import importlib
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from synthetic import write_bank_checkpoint

import ganeval
from ganeval.checkpoints import load_generator
from ganeval.features.custom import CustomExtractor
from ganeval.stats import compute_stats, save_stats
from ganeval.user_code import resolve_factory

FAST = {"metrics": ("mnist_fd",), "num_samples": 200, "bootstrap": 0, "device": "cpu", "progress": False}
EMPTY_SHA = hashlib.sha256(b"").hexdigest()
GEN = """
from synthetic import BankGenerator


class G(BankGenerator):
    def forward(self, z):
        return {sign}super().forward(z)
"""
NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.randn(784, 8, generator=torch.Generator().manual_seed(0)) / 28)

    def forward(self, x):
        return {scale} * torch.tanh(x.flatten(1) @ self.w)
"""


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


@pytest.fixture
def weights(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A state dict of the bank generator (what ``--generator`` loads) and its kwargs."""
    gen, meta = load_generator(write_bank_checkpoint(tmp_path / "run", 1000, noise=0.2))
    torch.save(gen.state_dict(), tmp_path / "G_1000.pt")
    return tmp_path / "G_1000.pt", meta["config"]


def _cell(monkeypatch: pytest.MonkeyPatch, name: str, code: str) -> dict[str, Any]:
    """Run ``code`` as a notebook cell or ``python -c`` does: in a module that has no source file."""
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    exec(code, module.__dict__)  # noqa: S102 - the test's own code, standing in for a notebook cell
    return module.__dict__


def _fd(df: Any) -> float:
    assert df["status"].iloc[0] == "ok", df.get("error")
    return float(df["mnist_fd"].iloc[0])


def test_a_generator_without_readable_source_is_never_served_stale_features(tmp_path: Path, weights, monkeypatch) -> None:
    """Redefining the class (another cell) once reused the first definition's cached features: source SHA-256 of ''."""
    path, cfg = weights
    first = _fd(ganeval.score(path, generator=_cell(monkeypatch, "cell_gen", GEN.format(sign=""))["G"], generator_kwargs=cfg, **FAST))
    df = ganeval.score(path, generator=_cell(monkeypatch, "cell_gen", GEN.format(sign="-"))["G"], generator_kwargs=cfg, **FAST)
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "fresh"))
    fresh = _fd(ganeval.score(path, generator=_cell(monkeypatch, "cell_gen", GEN.format(sign="-"))["G"],
                              generator_kwargs=cfg, **FAST))
    assert _fd(df) == fresh and abs(fresh - first) > 1  # the inverted digits, not the first definition's numbers
    notes = " ".join(df.attrs["summary"]["notes"])
    assert "source cannot be read" in notes and "SHA-256 unavailable" in notes and EMPTY_SHA[:16] not in notes
    assert not list((tmp_path / "cache").rglob("*.npz"))  # nothing cached under a name that cannot tell them apart
    keyed = ganeval.score(path, generator=_cell(monkeypatch, "cell_gen", GEN.format(sign="-"))["G"], generator_kwargs=cfg,
                          cache_key="inverted-v1", **FAST)
    assert _fd(keyed) == fresh and list((tmp_path / "fresh").rglob("*.npz"))  # an explicit cache_key caches it


def test_a_feature_network_without_readable_source_is_never_cached(tmp_path: Path, monkeypatch, mnist_dir: Path) -> None:
    ckpt = write_bank_checkpoint(tmp_path / "run", 1000, noise=0.2)
    net = _cell(monkeypatch, "cell_net", NET.format(scale=1))["Net"]
    ex = CustomExtractor(net, device="cpu")
    assert ex.provenance()["network_source_sha256"] == "unavailable" and not ex.cacheable
    save_stats(tmp_path / "ref" / "test_custom.npz", compute_stats("mnist-test", ex, limit=500, progress=False))
    opts = {**FAST, "metrics": ("custom_fd",), "reference": str(tmp_path / "ref")}
    first = float(ganeval.score(ckpt, feature_network=net, **opts)["custom_fd"].iloc[0])
    scaled = _cell(monkeypatch, "cell_net", NET.format(scale=3))["Net"]  # the same weights, other features
    again = float(ganeval.score(ckpt, feature_network=scaled, **opts)["custom_fd"].iloc[0])
    assert again > 2 * first  # features ×3 against statistics of ×1: farther, not the cached first answer


def test_an_edited_module_is_imported_again_in_the_same_session(tmp_path: Path, weights, monkeypatch) -> None:
    """``--generator mymodels:G`` in one session: sys.modules kept the old code while the digest read the edited file."""
    path, cfg = weights
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("edited_gens", "preloaded_gens"):
        monkeypatch.delitem(sys.modules, name, raising=False)
        (tmp_path / f"{name}.py").write_text(GEN.format(sign=""))
    before = _fd(ganeval.score(path, generator="edited_gens:G", generator_kwargs=cfg, **FAST))
    (tmp_path / "edited_gens.py").write_text(GEN.format(sign="-"))
    after = _fd(ganeval.score(path, generator="edited_gens:G", generator_kwargs=cfg, **FAST))
    __import__("preloaded_gens")  # imported by the user before the edit, first named to ganeval after it
    (tmp_path / "preloaded_gens.py").write_text(GEN.format(sign="-"))
    preloaded = _fd(ganeval.score(path, generator="preloaded_gens:G", generator_kwargs=cfg, **FAST))
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "fresh"))
    sys.modules.pop("edited_gens")
    fresh = _fd(ganeval.score(path, generator="edited_gens:G", generator_kwargs=cfg, **FAST))
    assert after == fresh == preloaded and abs(after - before) > 1


def test_a_class_object_whose_file_was_edited_without_a_reload_is_never_cached(tmp_path: Path, weights, monkeypatch) -> None:
    """``generator=G`` (a class object) after its file was edited, before a reload: G runs the old code, the file's
    digest is the new code's. Its features were cached under that digest, and the reloaded class was served them."""
    path, cfg = weights
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "object_gens", raising=False)
    (tmp_path / "object_gens.py").write_text(GEN.format(sign="") + "\nHIDDEN = 3\n")
    import object_gens  # noqa: PLC0415 - the user's module, written above

    before = _fd(ganeval.score(path, generator=object_gens.G, generator_kwargs=cfg, **FAST))
    (tmp_path / "object_gens.py").write_text(GEN.format(sign="-") + "\nHIDDEN = 3\n")
    stale = ganeval.score(path, generator=object_gens.G, generator_kwargs=cfg, **FAST)  # the old code runs
    assert _fd(stale) == before and "file was edited since it was imported" in " ".join(stale.attrs["summary"]["notes"])
    reloaded = importlib.reload(object_gens).G
    after = _fd(ganeval.score(path, generator=reloaded, generator_kwargs=cfg, **FAST))
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "fresh"))
    assert after == _fd(ganeval.score(path, generator=reloaded, generator_kwargs=cfg, **FAST)) and abs(after - before) > 1
    (tmp_path / "object_gens.py").write_text(GEN.format(sign="-") + "\nHIDDEN = 4\n")  # a constant the code may read
    assert not resolve_factory(reloaded, cfg).source_sha256
    (tmp_path / "object_gens.py").write_text("# a comment above moves every line\n" + GEN.format(sign="-") + "\nHIDDEN = 3\n")
    assert resolve_factory(reloaded, cfg).source_sha256  # the same code: still cached (under the file's new digest)


def test_an_edited_local_module_the_code_imports_changes_its_identity(tmp_path: Path, weights, monkeypatch) -> None:
    """A generator (or feature network) whose module imports another of the user's modules: editing that one changed
    the features but not the identity, so the cached numbers came back (and statistics made with the old code were
    accepted). Its source and its local imports' now identify it, and an edited import is reloaded before use."""
    path, cfg = weights
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("gens_dep", "sign_dep"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    (tmp_path / "sign_dep.py").write_text("SIGN = 1\n")
    (tmp_path / "gens_dep.py").write_text(GEN.format(sign="SIGN * ").replace("from synthetic", "from sign_dep import SIGN\nfrom synthetic"))
    before = _fd(ganeval.score(path, generator="gens_dep:G", generator_kwargs=cfg, **FAST))
    first = resolve_factory("gens_dep:G", cfg).source_sha256
    (tmp_path / "sign_dep.py").write_text("SIGN = -1\n")
    after = _fd(ganeval.score(path, generator="gens_dep:G", generator_kwargs=cfg, **FAST))
    second = resolve_factory("gens_dep:G", cfg).source_sha256
    by_path = resolve_factory(f"{tmp_path / 'gens_dep.py'}:G", cfg).source_sha256
    (tmp_path / "sign_dep.py").write_text("SIGN = 1\n")
    assert resolve_factory(f"{tmp_path / 'gens_dep.py'}:G", cfg).source_sha256 == first  # file.py:NAME follows too
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "fresh"))
    (tmp_path / "sign_dep.py").write_text("SIGN = -1\n")
    fresh = _fd(ganeval.score(path, generator="gens_dep:G", generator_kwargs=cfg, **FAST))
    assert after == fresh and abs(after - before) > 1, (before, after, fresh)
    assert first and second and first != second and by_path == second
    own = hashlib.sha256((tmp_path / "gens_dep.py").read_bytes()).hexdigest()
    assert second != own  # the module's and its import's sources, not the module's alone
    (tmp_path / "plain_dep.py").write_text("import torch\nfrom torch import nn\n\n\nclass Net(nn.Linear):\n    pass\n")
    plain = resolve_factory(f"{tmp_path / 'plain_dep.py'}:Net", {"in_features": 2, "out_features": 2}).source_sha256
    assert plain == hashlib.sha256((tmp_path / "plain_dep.py").read_bytes()).hexdigest()  # installed imports: unchanged


def test_ordinary_module_code_is_not_mistaken_for_an_edited_file(tmp_path: Path, monkeypatch) -> None:
    """Top-level lambdas (one qualified name, one not bound to a name), a dataclass's generated methods and a decorated method: the file
    still describes the module, so its code is identified and cached (a false "edited" would never cache it)."""
    (tmp_path / "ordinary_gens.py").write_text(
        "import dataclasses\nimport torch\nfrom torch import nn\n\nACT = lambda x: x * 2  # noqa: E731\n"
        "SCALE = lambda x: x / 2  # noqa: E731\nORDER = sorted([3, 1], key=lambda v: -v)\n\n\n"
        "@dataclasses.dataclass\nclass Cfg:\n    width: int = 2\n\n\n"
        "class Net(nn.Linear):\n    cfg = Cfg()\n\n    @torch.no_grad()\n    def probe(self, x):\n        return ACT(SCALE(x))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ordinary_gens", raising=False)
    made = resolve_factory("ordinary_gens:Net", {"in_features": 2, "out_features": 2})
    assert made.source_sha256 == hashlib.sha256((tmp_path / "ordinary_gens.py").read_bytes()).hexdigest()
