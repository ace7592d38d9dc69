"""A Ctrl-C while ``ganeval`` is still starting (importing torch takes seconds on a busy machine) is one line and
exit 130, as it is once the command runs: it was a 30-line traceback of the import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Ctrl-C arriving while torch is imported, made certain: the import raises KeyboardInterrupt as Python's SIGINT
# handler would at that moment. Then the installed command's own start: ``from ganeval.cli import main; main()``.
ENTRY = """
import sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
from ganeval.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize("argv", [["score", "runs/x"], ["metrics"]])
def test_ctrl_c_during_start_up_is_one_line(argv: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", ENTRY.format(argv=argv)], capture_output=True, text=True, timeout=120,
                         env=env, cwd=tmp_path)
    assert res.returncode == 130 and res.stderr == "ganeval: interrupted\n" and res.stdout == "", res.stderr[-3000:]


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["score", "--help"], ["score", "x", "--metrics", "nope"]])
def test_help_version_and_usage_errors_answer_without_torch(argv: list[str], tmp_path: Path) -> None:
    """With torch's import made to fail, what needs only the parser still answers: it never imports torch."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", ENTRY.format(argv=argv)], capture_output=True, text=True, timeout=120,
                         env=env, cwd=tmp_path)
    assert "interrupted" not in res.stderr and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert (res.returncode, bool(res.stdout)) == ((2, False) if "nope" in argv else (0, True)), res.stderr[-3000:]


def test_the_package_imports_nothing_heavy() -> None:
    """What makes that possible: ``import ganeval`` (run by the command before anything else) loads no torch; its
    API names still resolve."""
    code = "import sys, ganeval; assert 'torch' not in sys.modules; from ganeval import load_generator, score; print('ok')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0 and res.stdout == "ok\n", res.stderr[-3000:]


def test_the_command_loads_no_library_it_does_not_need_yet() -> None:
    """The command's start (every ``ganeval …``, ``--help`` and ``--version`` too: the whole parser built) leaves
    torch (about 1.5 s to import), torch-fidelity (torchvision, torch._dynamo), scipy.stats, pandas and pyarrow to
    the work that uses them: help, the version and a usage error answer at once."""
    code = ("import sys, ganeval.cli.app as app; app.build_parser(); "
            "print(sorted(m for m in ('torch', 'torch_fidelity', 'torchvision', 'torch._dynamo', 'scipy.stats', 'pandas', "
            "'pyarrow') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0 and res.stdout == "[]\n", (res.stdout, res.stderr[-3000:])


@pytest.mark.parametrize("argv", [["metrics"], ["metrics", "--json"]])
def test_a_reader_that_leaves_the_pipe_early_ends_the_command_quietly(argv: list[str], tmp_path: Path) -> None:
    """``ganeval metrics | true`` (or ``| head -1`` with more output than a pipe holds): the closed pipe was exit 2,
    the code of a usage or input error. Now 141 (128 + SIGPIPE, as a shell reports a program a closed pipe ended),
    nothing on stderr, no second error at exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = f"import sys\nfrom ganeval.cli import main\nsys.exit(main({argv!r}))\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader leaves before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err
    whole = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert whole.returncode == 0 and whole.stdout.strip(), whole.stderr  # read to the end: the same command succeeds
