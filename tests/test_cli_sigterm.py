"""SIGTERM (``kill``, a service or batch-job stop, torchrun stopping its ranks) ends every command as Ctrl-C does.

It ended ``score``, ``gate``, ``compare``, ``stats``, ``train``, ``export`` and ``train-classifier`` at once (only
``watch`` took it): a report, statistics file or checkpoint being written stayed behind as a ``.tmp`` file, and no
line said why the command ended. Now the work unwinds through its cleanup, one line on stderr, exit 143. The signal
is sent the moment a chosen file is being written (its bytes complete, not yet renamed into place), the worst time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_bank_checkpoint

ROOT = Path(__file__).resolve().parent.parent
# The CLI (with the test-only model), sending itself SIGTERM as the first file whose name holds TERM_AT is synced
# before its rename into place: the signal arrives mid-write.
ENTRY = """import os, signal, sys
real = os.fsync
def fsync(fd):
    if os.environ["TERM_AT"] in os.path.basename(os.readlink(f"/proc/self/fd/{fd}")):
        os.environ["TERM_AT"] = "/"  # once: no file name holds it
        os.kill(os.getpid(), signal.SIGTERM)
    return real(fd)
os.fsync = fsync
import synthetic  # noqa: F401
from ganeval.cli import main
sys.exit(main(sys.argv[1:]))
"""
FAST = ["--metrics", "mnist_fd", "--num-samples", "64", "--bootstrap", "0", "--device", "cpu", "--no-progress"]
INTERRUPTED = "ganeval: interrupted\n"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "GANEVAL_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _cli(tmp_path: Path, argv: list[str], term_at: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in ``tmp_path``, SIGTERM arriving as a file named like ``term_at`` is written (None: no signal)."""
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    env = _env(tmp_path, TERM_AT=term_at if term_at is not None else "/")
    return subprocess.run([sys.executable, str(entry), *argv], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


def _no_leftovers(tmp_path: Path) -> None:
    """No temporary file anywhere (outputs, cache), and every JSON file written is whole."""
    assert [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []
    for path in tmp_path.rglob("*.json"):
        json.loads(path.read_text())


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` (hidden ones too: a temporary file) by name, with its bytes."""
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _cache_loads(tmp_path: Path) -> None:
    """Every cache entry is complete: a half-written or torn one would make later runs fail or lie."""
    for path in (tmp_path / "cache").rglob("*.npz"):
        with np.load(path, allow_pickle=False) as data:
            assert data.files, path


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    write_bank_checkpoint(folder, 1000)
    write_bank_checkpoint(folder, 2000, noise=0.5)
    return folder


@pytest.mark.parametrize("term_at", [".summary.json.", ".report.html."])
def test_score_sigterm_mid_report(tmp_path: Path, run: Path, term_at: str) -> None:
    """The report's summary (or page) being written when SIGTERM comes: removed, not left as ``.tmp``; the earlier
    report stays whole, byte for byte (the new tables were left beside its page, its summary.json removed); a rerun
    scores from the cache, which is whole too."""
    first = _cli(tmp_path, ["score", str(run / "ckpt_0001000.safetensors"), "--out", str(tmp_path / "rep"), *FAST])
    assert first.returncode == 0, first.stderr[-3000:]
    before = _contents(tmp_path / "rep")
    res = _cli(tmp_path, ["score", str(run), "--out", str(tmp_path / "rep"), *FAST], term_at)
    assert (res.returncode, res.stderr) == (128 + signal.SIGTERM, INTERRUPTED), res.stderr[-3000:]
    _no_leftovers(tmp_path)
    _cache_loads(tmp_path)
    assert _contents(tmp_path / "rep") == before
    again = _cli(tmp_path, ["score", str(run), "--out", str(tmp_path / "rep"), *FAST])
    assert again.returncode == 0, again.stderr[-3000:]
    assert [r["status"] for r in json.loads((tmp_path / "rep" / "summary.json").read_text())["rows"]] == ["ok", "ok"]


def test_score_sigterm_mid_cache_entry(tmp_path: Path, run: Path) -> None:
    """SIGTERM as the first checkpoint's features go into the cache: no entry (whole or partial), no report."""
    res = _cli(tmp_path, ["score", str(run), "--out", str(tmp_path / "rep"), *FAST], ".npz.")
    assert (res.returncode, res.stderr) == (128 + signal.SIGTERM, INTERRUPTED), res.stderr[-3000:]
    _no_leftovers(tmp_path)
    assert list((tmp_path / "cache").rglob("*.npz")) == []
    assert not (tmp_path / "rep" / "summary.json").exists()


@pytest.mark.parametrize("command", ["gate", "compare"])
def test_gate_and_compare_sigterm_mid_write(tmp_path: Path, run: Path, command: str) -> None:
    """``gate`` (its report) and ``compare`` (compare.json) stopped mid-write: nothing half-written, one line, the
    earlier report whole."""
    if command == "gate":
        argv, term_at = ["gate", str(run), "--max-mnist-fd", "1000", "--out", str(tmp_path / "out"), *FAST], ".summary.json."
    else:
        other = tmp_path / "other"
        write_bank_checkpoint(other, 1000, noise=0.3)
        argv = ["compare", str(run / "ckpt_0001000.safetensors"), str(other), "--out", str(tmp_path / "out"), "--permutations", "0", *FAST]
        term_at = ".compare.json."
    first = _cli(tmp_path, argv)
    assert first.returncode == 0, first.stderr[-3000:]
    before = _contents(tmp_path / "out")
    res = _cli(tmp_path, argv, term_at)
    assert (res.returncode, res.stderr) == (128 + signal.SIGTERM, INTERRUPTED), res.stderr[-3000:]
    _no_leftovers(tmp_path)
    assert _contents(tmp_path / "out") == before


def test_stats_sigterm_mid_write(tmp_path: Path) -> None:
    """``stats`` stopped as the statistics file is written: it and its sidecar are written both or neither (the
    sidecar was left alone, renamed into place before the statistics: a record of a file not there)."""
    from ganeval.stats import load_stats

    out = tmp_path / "s.npz"
    argv = ["stats", "--dataset", "mnist-test", "--extractor", "mnist", "--limit", "200", "--device", "cpu",
            "--no-progress", "--out", str(out)]
    res = _cli(tmp_path, argv, ".s.npz.")
    assert (res.returncode, res.stderr) == (128 + signal.SIGTERM, INTERRUPTED), res.stderr[-3000:]
    _no_leftovers(tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("s."))
    assert written in ([], ["s.json", "s.npz"]), written
    if written:
        assert load_stats(out).meta["n"] == 200


def test_stats_sigterm_mid_features_keeps_the_earlier_outputs(tmp_path: Path) -> None:
    """``stats --save-features`` stopped as the features file is written: the statistics and their sidecar were
    already renamed into place (new statistics beside the earlier per-image features, which ``floors
    --features-dir`` then read as theirs). Now the three change as one set: all as they were, none left as ``.tmp``."""
    out, feats = tmp_path / "s.npz", tmp_path / "f.npy"

    def argv(limit: str) -> list[str]:
        return ["stats", "--dataset", "mnist-test", "--extractor", "mnist", "--limit", limit, "--device", "cpu",
                "--no-progress", "--out", str(out), "--save-features", str(feats)]

    first = _cli(tmp_path, argv("200"))
    assert first.returncode == 0, first.stderr[-3000:]
    before = {p.name: p.read_bytes() for p in (out, out.with_suffix(".json"), feats)}
    res = _cli(tmp_path, argv("300"), ".f.npy.")
    assert (res.returncode, res.stderr) == (128 + signal.SIGTERM, INTERRUPTED), res.stderr[-3000:]
    _no_leftovers(tmp_path)
    assert {p.name: p.read_bytes() for p in (out, out.with_suffix(".json"), feats)} == before


def test_train_sigterm_mid_checkpoint_keeps_the_finished_ones(tmp_path: Path) -> None:
    """``train`` stopped while its second checkpoint is written: the first stays whole, the second is not there in
    part, and ``--resume`` goes on from the first to the end."""
    from ganeval.checkpoints import load_generator

    out = tmp_path / "run"
    argv = ["train", "--model", "mlp", "--iterations", "4", "--checkpoint-every", "2", "--log-every", "2",
            "--batch-size", "8", "--device", "cpu", "--no-progress", "--out", str(out)]
    res = _cli(tmp_path, argv, ".ckpt_0000004.")
    assert (res.returncode, res.stderr) == (128 + signal.SIGTERM, INTERRUPTED), res.stderr[-3000:]
    _no_leftovers(tmp_path)
    assert sorted(p.name for p in out.glob("ckpt_*")) == ["ckpt_0000002.safetensors"]
    load_generator(out / "ckpt_0000002.safetensors", device="cpu")  # whole: it loads
    again = _cli(tmp_path, [*argv, "--resume"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(p.name for p in out.glob("ckpt_*")) == ["ckpt_0000002.safetensors", "ckpt_0000004.safetensors"]


def test_export_sigterm_mid_write(tmp_path: Path, run: Path) -> None:
    """``export`` stopped as the new file is written: the file is not there, so the export can simply be run again."""
    res = _cli(tmp_path, ["export", str(run / "ckpt_0001000.safetensors"), "--out", str(tmp_path / "g.safetensors")],
               ".g.safetensors.")
    assert (res.returncode, res.stderr) == (128 + signal.SIGTERM, INTERRUPTED), res.stderr[-3000:]
    _no_leftovers(tmp_path)
    assert not (tmp_path / "g.safetensors").exists()


def test_sigterm_mid_scoring_writes_no_report(tmp_path: Path, run: Path) -> None:
    """SIGTERM from outside while checkpoints are being scored (the first one's features cached, the second's being
    computed): no report, the cache whole, one line, exit 143."""
    write_bank_checkpoint(run, 3000, noise=0.2)
    argv = [sys.executable, "-m", "ganeval_test_entry", "score", str(run), "--out", str(tmp_path / "rep"),
            "--metrics", "mnist_fd", "--num-samples", "4000", "--batch-size", "250", "--bootstrap", "0", "--device",
            "cpu", "--no-progress"]
    proc = subprocess.Popen(argv, env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 240
        while not list((tmp_path / "cache").rglob("*.npz")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert (proc.returncode, err) == (128 + signal.SIGTERM, INTERRUPTED), (out, err[-3000:])
    _no_leftovers(tmp_path)
    _cache_loads(tmp_path)
    assert not (tmp_path / "rep").exists() or list((tmp_path / "rep").iterdir()) == []


STUCK = """import os, sys, time
import torch.distributed as dist
from ganeval.interrupts import sigterm_as_interrupt
dist.init_process_group("gloo")
if dist.get_rank() == 1:  # a peer that does not come to the collective (busy, or hung)
    time.sleep(60)
    sys.exit(0)
if os.environ.get("FILL_STDOUT"):  # stdout a pipe nobody reads: full, with more output waiting in Python's buffer
    os.set_blocking(1, False)
    try:
        while True:
            os.write(1, b"x" * 4096)
    except BlockingIOError:
        os.set_blocking(1, True)
    sys.stdout.write("buffered\\n")
print("waiting", file=sys.stderr, flush=True)
with sigterm_as_interrupt(grace_s=1.0, last_words="ganeval: interrupted (stuck)"):
    dist.all_gather_object([None, None], 0)  # gloo's C++ wait: Python's SIGTERM handler cannot run in it
print("not reached", file=sys.stderr, flush=True)
"""


@pytest.mark.parametrize("full_stdout", [False, True], ids=["stdout-read", "stdout-a-full-pipe"])
def test_sigterm_ends_a_rank_waiting_in_a_collective(tmp_path: Path, full_stdout: bool) -> None:
    """A torchrun rank waiting in a collective for a peer cannot run Python's SIGTERM handler until the collective
    returns (the peer comes, or the group times out: 30 minutes). SIGTERM's default ended it at once; taken as an
    interrupt it must still end it within the grace: exit 143 with its line, even where its stdout is a pipe nobody
    reads, full, with output still buffered (flushing it would block for ever)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    (tmp_path / "stuck.py").write_text(STUCK)
    read_end, write_end = os.pipe()  # rank 0's stdout: never read while it runs
    procs = []
    for rank in (0, 1):
        env = {**_env(tmp_path), "RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               **({"FILL_STDOUT": "1"} if full_stdout else {})}
        env.pop("PYTHONUNBUFFERED", None)  # stdout block-buffered, as a pipe's is by default
        out = write_end if rank == 0 and full_stdout else subprocess.DEVNULL
        procs.append(subprocess.Popen([sys.executable, str(tmp_path / "stuck.py")], env=env, stdout=out,
                                      stderr=subprocess.PIPE, text=True))
    os.close(write_end)
    try:
        assert procs[0].stderr is not None and procs[0].stderr.readline() == "waiting\n"
        time.sleep(1.0)  # into the collective
        sent = time.monotonic()
        procs[0].send_signal(signal.SIGTERM)
        procs[0].wait(timeout=30)
        took = time.monotonic() - sent
        err = procs[0].stderr.read()
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()
        os.close(read_end)
    assert procs[0].returncode == 128 + signal.SIGTERM and err.endswith("ganeval: interrupted (stuck)\n"), err[-3000:]
    assert took < 15 and "not reached" not in err, (took, err)


def test_the_cli_takes_sigterm_the_python_api_does_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI turns SIGTERM into an interrupt for the work; ``ganeval.score`` (a library call in someone's
    program) leaves the program's signal handling alone, and the CLI restores SIGTERM after."""
    import torch

    import ganeval
    from ganeval.cli import main

    module = tmp_path / "sigterm_gen.py"  # a generator that notes SIGTERM's handler while it is run
    module.write_text("import signal, torch\nseen = []\nclass G(torch.nn.Module):\n    nz = 16\n"
                      "    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(16, 784)\n"
                      "    def forward(self, z):\n        seen.append(signal.getsignal(signal.SIGTERM))\n"
                      "        return torch.tanh(self.fc(z)).view(-1, 1, 28, 28)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import sigterm_gen
    monkeypatch.setenv("GANEVAL_CACHE_DIR", str(tmp_path / "cache"))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ganeval.score(sigterm_gen.G(), metrics=["mnist_fd"], num_samples=64, bootstrap=0, device="cpu", out=tmp_path / "api",
                  progress=False, use_cache=False)
    assert sigterm_gen.seen and all(h is signal.SIG_DFL for h in sigterm_gen.seen)
    sigterm_gen.seen.clear()
    torch.save(sigterm_gen.G().state_dict(), tmp_path / "g.pt")
    assert main(["score", str(tmp_path / "g.pt"), "--generator", "sigterm_gen:G", "--out", str(tmp_path / "cli"),
                 "--no-cache", *FAST]) == 0
    assert sigterm_gen.seen and all(getattr(h, "_ganeval_interrupt", False) for h in sigterm_gen.seen)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.set_wakeup_fd(-1) == -1


@pytest.mark.usefixtures("ctrl_c_raises")
def test_an_interrupt_as_the_temporary_file_is_made_leaves_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C or SIGTERM between the temporary file's making and the write's cleanup taking charge of it (it came
    while ``mkstemp`` returned) left the ``.tmp`` file behind. Now it is held until the cleanup covers the file."""
    import tempfile

    from ganeval import atomic

    real = tempfile.mkstemp

    def mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        made = real(*args, **kwargs)  # type: ignore[call-overload]
        os.kill(os.getpid(), signal.SIGINT)
        return made

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_text(tmp_path / "a.json", "{}")
    assert list(tmp_path.iterdir()) == []
