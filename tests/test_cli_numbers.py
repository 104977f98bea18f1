"""Non-finite and out-of-range numbers are input errors (exit 3) naming the parameter, refused before
any store is opened or any call made: nan and inf temperatures and timeouts, 1e20 tokens, seeds no
store or generator takes, through flags and through `-p`."""
import json
import subprocess
import sys

import pytest


def _cli(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def data(tmp_path):
    (tmp_path / "items.jsonl").write_text(json.dumps({"item_id": "a", "input": "x"}) + "\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("flag, value", [
    ("--temperature", "nan"), ("--temperature", "inf"), ("--temperature", "-inf"), ("--temperature", "3"),
    ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "0"),
    ("--max-tokens", "100000000000000000000"), ("--max-tokens", "1e20"), ("--seed", "-1"),
    ("--seed", str(2 ** 64)),
])
def test_generate_refuses_a_number_out_of_range(data, flag, value):
    proc = _cli(data, "generate", "items.jsonl", "--model", "fake/echo", flag, value)
    assert proc.returncode == 3, proc.stderr
    assert flag in proc.stderr and "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (data / ".workbench").exists()


@pytest.mark.parametrize("name, value", [
    ("temperature", "NaN"), ("temperature", "Infinity"), ("timeout_s", "NaN"), ("max_tokens", "1e20"),
    ("max_tokens", "100000000000000000000"), ("seed", "1e30"), ("seed", "-3"), ("sample_size", "0"),
])
def test_compare_refuses_a_parameter_out_of_range(data, name, value):
    proc = _cli(data, "compare", "-p", "dataset", "items.jsonl", "-p", name, value)
    assert proc.returncode == 3, proc.stderr
    assert f"parameter '{name}'" in proc.stderr and "internal error" not in proc.stderr
