"""Progress of long phases: a bar on a terminal, one line per phase in a log, nothing when quiet."""
import io

from workbench.progress import BarProgress, LineProgress, phase, reporter


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_line_when_a_phase_starts_and_one_when_it_ends():
    out = io.StringIO()
    bar = reporter("auto", out, quiet_below_s=0)("generating m", 3)
    assert isinstance(bar, LineProgress)
    for done in range(1, 4):
        bar.update(done, int(done == 3), 0.0)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "generating m: 3 to do"
    assert lines[1].startswith("generating m: 3/3 done in ") and lines[1].endswith("1 errors")
    assert len(lines) == 2


def test_a_terminal_gets_a_bar_with_rate_errors_and_cost():
    out = Tty()
    bar = reporter("auto", out, quiet_below_s=0)("judging", 4)
    assert isinstance(bar, BarProgress)
    bar.update(2, 1, 0.0123)
    bar.close()
    text = out.getvalue()
    assert "judging" in text and "2/4" in text and "errors=1" in text and "0.0123" in text and "/s" in text


def test_quiet_and_no_reporter_print_nothing():
    out = io.StringIO()
    silent = reporter("quiet", out)("x", 5)
    silent.update(5)
    silent.close()
    none = phase(None, "y", 2)
    none.update(2)
    none.close()
    assert out.getvalue() == ""


def test_a_one_step_phase_reads_as_a_step():
    out = io.StringIO()
    step = reporter("lines", out, quiet_below_s=0)("writing report.html", 1)
    step.update(1)
    step.close()
    assert out.getvalue().splitlines()[0] == "writing report.html ..."
    assert "writing report.html: done in" in out.getvalue()


def test_a_phase_that_takes_no_time_prints_nothing_in_a_log_or_on_a_terminal():
    """A warm run: every answer cached, the phase is over at once; no "32 to do ... 137464.7/s"."""
    for out in (io.StringIO(), Tty()):
        bar = reporter("auto", out)("generating m", 32)
        bar.update(32)
        bar.close()
        assert out.getvalue() == ""


def test_a_fast_phase_with_errors_still_says_so():
    out = io.StringIO()
    bar = reporter("lines", out)("generating m", 32)
    bar.update(32, 3)
    bar.close()
    assert out.getvalue().splitlines() == [out.getvalue().strip()]
    assert "32/32 done" in out.getvalue() and "3 errors" in out.getvalue() and "/s" not in out.getvalue()


def test_a_slow_phase_announces_itself_while_it_runs_and_gives_its_rate():
    import time

    out = io.StringIO()
    bar = reporter("lines", out, quiet_below_s=0.05)("generating m", 4)
    time.sleep(0.3)
    assert out.getvalue() == "generating m: 4 to do\n"  # before the end, so a CI log shows what is running
    bar.update(4)
    time.sleep(0.8)
    bar.close()
    assert out.getvalue().splitlines()[1].startswith("generating m: 4/4 done in 1.")
    assert "/s" in out.getvalue()
    slow = io.StringIO()
    bar = reporter("lines", slow, quiet_below_s=0)("judging", 2)
    bar.started -= 30  # as if it had taken 30 s
    bar.update(2)
    bar.close()
    assert "2/2 done in 30.0 s, 15.0 s each, 0 errors" in slow.getvalue()  # not "0.1/s"


def test_library_bars_are_off_when_stderr_is_not_a_terminal():
    """Weight-loading bars ("Loading weights 0/103") filled notebooks and CI logs."""
    import subprocess
    import sys

    code = ("import os, workbench, transformers.utils.logging as log; "
            "print(os.environ.get('HF_HUB_DISABLE_PROGRESS_BARS'), log.is_progress_bar_enabled())")
    env = {k: v for k, v in __import__("os").environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["1", "False"], out.stderr[-2000:]


def test_the_gguf_conversion_bar_is_silent_off_a_terminal(capsys):
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    from workbench.models.local_models import _library_bars_on_terminal_only

    original = gguf_utils.tqdm
    with _library_bars_on_terminal_only():
        for _ in gguf_utils.tqdm(range(50), desc="Converting and de-quantizing GGUF tensors..."):
            pass
    assert gguf_utils.tqdm is original
    assert "Converting" not in capsys.readouterr().err
