"""`optsearch check`: the JSON contract, and one-line errors with exit status 2 on bad input."""

import json
import subprocess
import sys

import pytest

from scripts.cli import main


def _cli(*args):
    proc = subprocess.run([sys.executable, "-m", "scripts.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_check_json_keys(capsys):
    assert main(["check", "program4", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    for key in ("canonical", "structural_hash", "fingerprint", "live_statements",
                "dead_statements", "live_state_slots"):
        assert key in info
    assert info["dead_statements"] == [11]
    assert info["live_state_slots"] == ["v"]


@pytest.mark.parametrize("content, line", [
    (b"def train(w, g, lr):\n    x = os.system('ls')\n    return x\n", 2),
    (b"def train(w, g, lr):\n    x = sign(g)\n    return x\n\xff\xfe\n", 4),
    (b"def train(w, g, lr)\n", 1),
    (b"def train(w, g, lr):\n    u = w * lr\n    return u\n", 3),
])
def test_bad_programs_give_one_line_and_status_2(tmp_path, content, line):
    path = tmp_path / "bad.py"
    path.write_bytes(content)
    code, out, err = _cli("check", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {path}:{line}: ")
    assert "Traceback" not in err


def test_missing_file_is_one_line_error(tmp_path):
    code, _, err = _cli("check", str(tmp_path / "nope.py"))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
