"""``ganeval watch``: checkpoints judged as a trainer writes them, the stop file, and ``train --stop-file``."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from synthetic import write_bank_checkpoint

from ganeval.early_stop import EarlyStopper
from ganeval.errors import GanevalError
from ganeval.train.loop import train
from ganeval.train.recipes import TrainError
from ganeval.train.state import STATE_NAME, load_state
from ganeval.watching import WATCH_NAME, training_target, watch

FAST = {"num_samples": 400, "bootstrap": 60, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("own_cache")  # a cache folder of each test's own


def _old(path: Path, seconds: float = 60.0) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def test_a_trainer_in_another_thread_is_stopped_by_the_stop_file(tmp_path: Path) -> None:
    """Noise falls to 0 at 3000, then rises. The 'trainer' (another thread) writes a checkpoint, and before the next
    one checks the stop file, as ganeval train --stop-file does; its pace is the watch's, so no timing decides."""
    run, stop = tmp_path / "run", tmp_path / "STOP"
    noise = {1000: 0.3, 2000: 0.1, 3000: 0.0, 4000: 0.2, 5000: 0.3, 6000: 0.4, 7000: 0.5, 8000: 0.6, 9000: 0.7}
    written: list[int] = []
    judged: list[int] = []

    def trainer() -> None:
        for it, n in noise.items():
            write_bank_checkpoint(run, it, noise=n)
            written.append(it)
            deadline = time.time() + 120
            while it not in judged and time.time() < deadline:  # "training" the next 1,000 iterations
                time.sleep(0.02)
            if stop.exists():
                return

    thread = threading.Thread(target=trainer)
    thread.start()
    lines: list[str] = []
    def emit(line: str) -> None:
        lines.append(line)
        if line.startswith("iteration "):
            judged.append(int(line.split(":")[0].split()[1]))

    res = watch(run, EarlyStopper(patience=2, threshold=0.10, **FAST), interval_s=0.05, idle_timeout_s=30, settle_s=0,
                stop_file=stop, emit=emit)
    thread.join()
    assert res.reason == "stop rule" and res.stopped and res.judged == [1000, 2000, 3000, 4000, 5000]
    assert res.stopper.best.name == "ckpt_0003000.safetensors" and not res.failed
    assert written == [1000, 2000, 3000, 4000, 5000]  # the stop file was there before the trainer's next checkpoint
    body = json.loads(stop.read_text())
    assert body["stop"] is True and body["iteration"] == 5000 and body["best"].endswith("ckpt_0003000.safetensors")
    report = json.loads((run / WATCH_NAME).read_text())
    assert report["ended"] == "stop rule" and [h["iteration"] for h in report["history"]] == res.judged
    assert [h["verdict"] for h in report["history"]] == ["first", "better", "better", "worse", "worse"]
    assert report["history"][-1]["confirmed"] is True
    assert lines[0] == f"iteration 1000: mnist_fd {report['history'][0]['value']:.4g} (first)"
    assert "2/2 in a row" in lines[-1] and "confirmed on fresh latents" in lines[-1]


def test_no_stop_ends_when_idle_and_waits_for_unsettled_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = _old(write_bank_checkpoint(run, 1000))
    _old(Path(shutil.copy(first, run / "ckpt_0002000.safetensors")))
    fresh = Path(shutil.copy(first, run / "ckpt_0003000.safetensors"))  # still "being written": not judged
    _old(Path(shutil.copy(first, run / "ckpt_0004000.safetensors")))  # settled, but after an unsettled one: waits
    res = watch(run, EarlyStopper(patience=1, threshold=0.0, **FAST), interval_s=0.05, idle_timeout_s=1.0, settle_s=30,
                emit=lambda _: None)
    assert res.reason == "idle" and res.judged == [1000, 2000] and not res.stopped
    _old(fresh)
    res = watch(run, EarlyStopper(patience=1, threshold=0.0, **FAST), interval_s=0.05, idle_timeout_s=1.0, settle_s=30,
                emit=lambda _: None)
    assert res.judged == [1000, 2000, 3000, 4000]
    assert {h["verdict"] for h in res.stopper.history[1:]} == {"no detectable difference"}


def test_a_bad_checkpoint_is_reported_and_the_others_judged(tmp_path: Path, cli) -> None:
    run = tmp_path / "run"
    write_bank_checkpoint(run, 1000)
    (run / "ckpt_0002000.safetensors").write_bytes(b"\x80\x04K\x01.")  # a pickle under a checkpoint's name
    write_bank_checkpoint(run, 3000)
    for p in run.iterdir():
        _old(p)
    code, out, err = cli("watch", run, "--interval", "0.05", "--idle-timeout", "1", "--settle", "0", "--num-samples", "400",
                         "--bootstrap", "60", "--device", "cpu", "--until", "3000")
    assert code == 1, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("iteration 1000: mnist_fd") and "ckpt_0002000.safetensors" in lines[1]
    assert lines[2].startswith("iteration 3000: mnist_fd") and "no detectable difference" in lines[2]
    assert "watch ended (until) after 2 checkpoint(s)" in lines[-1] and "1 checkpoint(s) not judged" in lines[-1]
    report = json.loads((run / WATCH_NAME).read_text())
    assert list(report["failed"]) == [str(run / "ckpt_0002000.safetensors")]


def test_a_late_arrival_out_of_order_is_not_judged(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _old(write_bank_checkpoint(run, 1000))
    _old(write_bank_checkpoint(run, 3000))
    lines: list[str] = []

    def emit(line: str) -> None:  # iteration 2000 lands after 3000 was judged
        lines.append(line)
        if line.startswith("iteration 3000"):
            _old(write_bank_checkpoint(run, 2000))

    res = watch(run, EarlyStopper(patience=1, threshold=0.0, **FAST), interval_s=0.05, idle_timeout_s=0.5, settle_s=0,
                emit=emit)
    assert res.judged == [1000, 3000] and list(res.failed) == [str(run / "ckpt_0002000.safetensors")]
    assert lines[-1].endswith("appeared after iteration 3000 was judged; not judged out of order")


def test_each_iteration_is_judged_once_whatever_its_files_and_until_needs_a_judged_one(tmp_path: Path) -> None:
    """A second file of an iteration (in the same look at the folder or a later one) is listed as not judged, never
    judged twice (it moved --patience twice); --until is reached only by a checkpoint that was judged; infinities go
    into watch.json as "inf", as in summary.json."""
    run = tmp_path / "run"
    first = _old(write_bank_checkpoint(run, 1000))
    _old(Path(shutil.copy(first, run / "ckpt_1000.safetensors")))  # the same iteration, in the same look
    _old(write_bank_checkpoint(run, 2000, emit_nan=True))
    (run / "ckpt_0003000.safetensors").write_bytes(b"broken")
    _old(run / "ckpt_0003000.safetensors")
    lines: list[str] = []

    def emit(line: str) -> None:  # another file of iteration 2000 lands after it was judged
        lines.append(line)
        if line.startswith("iteration 2000"):
            _old(Path(shutil.copy(first, run / "ckpt_2000.safetensors")))

    res = watch(run, EarlyStopper(patience=3, threshold=0.0, **FAST), interval_s=0.05, idle_timeout_s=0.6, settle_s=0,
                emit=emit, until=3000)
    assert res.judged == [1000, 2000] and res.reason == "idle", res.reason  # 3000 failed: not "until"
    assert set(res.failed) == {str(run / n) for n in ("ckpt_1000.safetensors", "ckpt_2000.safetensors",
                                                      "ckpt_0003000.safetensors")}
    assert sum("was already judged from another file" in line for line in lines) == 2
    broken = next(line for line in lines if "ckpt_0003000" in line)
    assert broken.count(str(run / "ckpt_0003000.safetensors")) == 1, broken  # the path once
    history = json.loads((run / WATCH_NAME).read_text())["history"]
    assert history[1]["iteration"] == 2000 and history[1]["value"] == "inf", history


def test_real_floor_needs_the_report(tmp_path: Path, cli) -> None:
    code, _, err = cli("watch", tmp_path / "run", "--real-floor", "--idle-timeout", "1")
    assert code == 2 and "--real-floor goes with --report" in err


def test_watching_a_ganeval_run_ends_when_training_finishes(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "mlp"
    train(out, "mlp", iterations=40, batch_size=16, checkpoint_every=20, log_every=20, device="cpu", progress=False)
    assert training_target(out) == (40, 40)
    res = watch(out, EarlyStopper(**FAST), interval_s=0.05, idle_timeout_s=60, settle_s=0, emit=lambda _: None,
                report={"metrics": ("mnist_fd", "modes"), "num_samples": 400, "bootstrap": 20, "device": "cpu",
                        "progress": False})
    assert res.reason == "training finished" and res.judged == [20, 40] and not res.report_errors
    assert (out / "report" / "scores.csv").is_file() and (out / "report" / "report.html").is_file()


def test_train_pauses_at_the_checkpoint_after_the_stop_file_appears(tmp_path: Path, mnist_dir: Path) -> None:
    out, stop = tmp_path / "mlp", tmp_path / "STOP"
    kw = {"batch_size": 16, "checkpoint_every": 20, "log_every": 20, "device": "cpu", "progress": False}

    def raise_stop() -> None:
        while not (out / "ckpt_0000020.safetensors").exists():
            time.sleep(0.005)
        stop.write_text("{}")

    thread = threading.Thread(target=raise_stop)
    thread.start()
    res = train(out, "mlp", iterations=4000, stop_file=stop, **kw)
    thread.join()
    assert 20 <= res.iteration < 4000 and res.iteration % 20 == 0
    assert load_state(out / STATE_NAME)[1]["iteration"] == res.iteration
    with pytest.raises(TrainError, match="stop file already exists"):
        train(out, resume=True, stop_file=stop, **kw)
    stop.unlink()
    again = train(out, resume=True, stop_file=stop, iterations=4000, stop_at=res.iteration + 20, **kw)
    assert again.iteration == res.iteration + 20


def test_refusals(tmp_path: Path, cli) -> None:
    (tmp_path / "f").write_text("x")
    code, _, err = cli("watch", tmp_path / "f")
    assert code == 2 and "is not a folder" in err and err.count("\n") == 1
    (tmp_path / "STOP").write_text("{}")
    code, _, err = cli("watch", tmp_path, "--stop-file", tmp_path / "STOP")
    assert code == 2 and "stop file already exists" in err
    with pytest.raises(GanevalError, match="--interval"):
        watch(tmp_path, interval_s=-1)
    code, _, err = cli("train", "--out", tmp_path / "t", "--early-stop", "--stop-file", tmp_path / "S")
    assert code == 2 and "--stop-file is for plain training" in err


def test_weight_files_of_your_own_generator_are_watched(tmp_path: Path, cli) -> None:
    """``torch.save({"G": state_dict}, "G_<it>.pt")`` from any trainer, judged with --generator; no-number files noted."""
    from synthetic import BankGenerator, bank_images

    run = tmp_path / "run"
    run.mkdir()
    clean = bank_images(None, 500)
    pattern = torch.rand(clean.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for it, n in {1000: 0.4, 2000: 0.0, 3000: 0.4, 4000: 0.6, 5000: 0.8}.items():
        gen = BankGenerator()
        gen.bank.copy_((clean + n * pattern).clamp(-1, 1))
        torch.save({"G": gen.state_dict(), "step": it}, run / f"G_{it}.pt")
    torch.save({"G": BankGenerator().state_dict()}, run / "G_latest.pt")
    torch.save({"w": torch.ones(3)}, run / "D_3000.pt")  # a discriminator beside them: left out by --pattern
    for p in run.iterdir():
        _old(p)
    code, out, err = cli("watch", run, "--generator", "synthetic:BankGenerator", "--pattern", "G_*.pt", "--patience", "2",
                         "--interval", "0.05",
                         "--idle-timeout", "1", "--settle", "0", "--num-samples", "400", "--bootstrap", "60",
                         "--device", "cpu", "--stop-file", tmp_path / "STOP", "--report", "--report-metrics", "mnist_fd",
                         "--real-floor")
    assert code == 1, err  # G_latest.pt has no iteration in its name: noted, not judged
    scored = (run / "report" / "scores.csv").read_text()  # the report holds the generator files only
    assert "G_1000.pt" in scored and "G_4000.pt" in scored and "D_3000" not in scored and "G_latest" not in scored
    floor = json.loads((run / "report" / "summary.json").read_text())["real_floor"]  # the floor row, beside them
    assert floor["dataset"] == "mnist-test" and floor["n"] == 400 and 0 < floor["values"]["mnist_fd"] < 5
    assert "<tr class=floor>" in (run / "report" / "report.html").read_text()
    report = json.loads((run / WATCH_NAME).read_text())
    assert [h["iteration"] for h in report["history"]] == [1000, 2000, 3000, 4000]
    assert report["ended"] == "stop rule" and report["best"].endswith("G_2000.pt")
    assert json.loads((tmp_path / "STOP").read_text())["iteration"] == 4000
    assert "G_latest.pt: no iteration number in its name" in out and "D_3000" not in out + json.dumps(report)


def test_ctrl_c_ends_the_watch_with_exit_130_and_its_record_saved(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    _old(write_bank_checkpoint(tmp_path / "run", 1000))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    # A shell without job control (CI's `.ci/run &`) starts background jobs with SIGINT ignored, and Python then never
    # turns it into KeyboardInterrupt: the child gets the default disposition back, as a terminal's Ctrl-C finds it.
    proc = subprocess.Popen([sys.executable, "-m", "ganeval_test_entry", "watch", str(tmp_path / "run"), "--interval", "0.2",
                             "--num-samples", "200", "--bootstrap", "10", "--device", "cpu"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while not (tmp_path / "run" / WATCH_NAME).exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)  # the first checkpoint is judged: the watch is waiting for the next one
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "watch ended (interrupted) after 1 checkpoint(s)" in out
    assert json.loads((tmp_path / "run" / WATCH_NAME).read_text())["ended"] == "interrupted"


def test_precision_reaches_the_judgements_and_is_recorded(tmp_path: Path, cli) -> None:
    """``watch --precision bf16`` judges with bf16 features (score's value at bf16, not fp32's) and says so in watch.json."""
    from ganeval.evaluate import score

    run = tmp_path / "run"
    _old(write_bank_checkpoint(run, 1000, noise=0.2))
    code, out, err = cli("watch", run, "--interval", "0.05", "--idle-timeout", "1", "--settle", "0", "--num-samples", "400",
                         "--bootstrap", "2", "--device", "cpu", "--until", "1000", "--precision", "bf16")
    assert code == 0, err
    report = json.loads((run / WATCH_NAME).read_text())
    assert report["precision"] == "bf16"
    judged = report["history"][0]["value"]
    opts = {"metrics": ("mnist_fd",), "num_samples": 400, "device": "cpu", "progress": False}
    bf16 = float(score(run / "ckpt_0001000.safetensors", precision="bf16", **opts)["mnist_fd"].iloc[0])
    fp32 = float(score(run / "ckpt_0001000.safetensors", **opts)["mnist_fd"].iloc[0])
    assert judged == pytest.approx(bf16, rel=1e-9) and abs(bf16 - fp32) > 1e-6 * abs(fp32)
    with pytest.raises(TrainError, match="must be one of fp32, tf32, bf16"):
        EarlyStopper(precision="fp16")


def test_the_best_stays_the_baseline_when_the_trainer_deletes_its_file(tmp_path: Path) -> None:
    """A trainer keeping only its last checkpoints deleted the best's file: every later checkpoint then failed ("no
    such file"), none was retried, and the stop rule could never fire. The watch judges against a private link."""
    run = tmp_path / "run"
    for it, noise in ((1000, 0.0), (2000, 0.5), (3000, 0.7)):
        _old(write_bank_checkpoint(run, it, noise=noise))

    def emit(line: str) -> None:  # the trainer deletes the best once it has been judged
        if line.startswith("iteration 1000"):
            (run / "ckpt_0001000.safetensors").unlink()

    res = watch(run, EarlyStopper(patience=2, threshold=0.1, **FAST), interval_s=0.05, idle_timeout_s=0.6, settle_s=0,
                emit=emit)
    assert res.failed == {} and res.judged == [1000, 2000, 3000] and res.reason == "stop rule", res.failed
    assert res.stopper.best == run / "ckpt_0001000.safetensors"  # reported by its own name
    assert not (run / ".ganeval_watch").exists()  # the private link goes with the watch


def test_a_failing_file_of_an_iteration_does_not_block_the_other(tmp_path: Path, cli) -> None:
    """G_100.pt and D_100.pt in one folder (no --pattern): the files were taken in directory order and the second
    was called "already judged" before the first was judged; when D failed, the iteration was never judged."""
    from synthetic import BankGenerator

    run = tmp_path / "run"
    run.mkdir()
    torch.save({"G": BankGenerator().state_dict()}, run / "G_100.pt")
    torch.save({"w": torch.ones(3)}, run / "D_100.pt")  # first by name, and not a generator
    for p in run.iterdir():
        _old(p)
    code, out, err = cli("watch", run, "--generator", "synthetic:BankGenerator", "--interval", "0.05",
                         "--idle-timeout", "0.6", "--settle", "0", "--num-samples", "300", "--bootstrap", "2",
                         "--device", "cpu")
    report = json.loads((run / WATCH_NAME).read_text())
    assert [h["iteration"] for h in report["history"]] == [100] and report["history"][0]["checkpoint"].endswith("G_100.pt")
    assert list(report["failed"]) == [str(run / "D_100.pt")] and "already judged" not in out + err, out + err
