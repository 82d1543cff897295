"""`optsearch check`: the JSON contract, and one-line errors with exit status 2 on bad input."""

import json
import subprocess
import sys

import pytest

from optsearch.cli.main import main


def _cli(*args):
    proc = subprocess.run([sys.executable, "-m", "optsearch.cli.main", *args], capture_output=True,
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
@pytest.mark.integration
def test_bad_programs_give_one_line_and_status_2(tmp_path, content, line):
    path = tmp_path / "bad.py"
    path.write_bytes(content)
    code, out, err = _cli("check", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {path}:{line}: ")
    assert "Traceback" not in err


@pytest.mark.integration
def test_missing_file_is_one_line_error(tmp_path):
    code, _, err = _cli("check", str(tmp_path / "nope.py"))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


_HOSTILE = {  # file content -> the line the error must name (None: accepted)
    b"\xef\xbb\xbfdef train(w, g, lr):\n    u = sign(g)\n    return u\n": None,  # BOM
    b"def train(w, g, lr):\r\n    u = sign(g)\r\n    return u\r\n": None,
    b"def train(w, g, m, lr):\n    t = exp(g)\n    u = g * lr\n    return u, t\n": None,
    b"": 1,
    b"def train(w, g, lr):\n    u = " + b"-" * 150_000 + b"g\n    return u\n": 2,
    b"def train(w, g, lr):\n    u = " + b"(" * 100_000 + b"g\n    return u\n": 2,
    b"# " + "\u00e9".encode() * 5_000_000 + b"\n": 1,  # 10 MB, cut inside a character
    b"def train(w, g, lr):\n    u = sign(g)\x00\n    return u\n": 2,
    b"def train(w, g, lr):\n    u = __import__('os').system('echo pwned')\n    return u\n": 2,
    b"__import__('os').system('echo pwned')\n": 1,
    b"def train(w, g, lr):\n    u = g * 1e999\n    return u\n": 2,
    b"def train(w, g, m, lr):\n    m += g\n    u = m * lr\n    return u, m\n": 2,
    b"def train(w, g, lr):\n    u = sign(g)\n    return u\nx = 1\n": 4,
    b"def train(w, g, lr):\n    n = norm(g)\n    k = mean(n)\n    u = g * k\n    return u\n": 3,
}


@pytest.mark.parametrize("content", list(_HOSTILE), ids=range(len(_HOSTILE)))
def test_hostile_files_in_process(tmp_path, capsys, content):
    path = tmp_path / "p.py"
    path.write_bytes(content)
    code = main(["check", str(path)])
    out, err = capsys.readouterr()
    line = _HOSTILE[content]
    if line is None:
        assert code == 0 and out.startswith("ok: ") and err == ""
    else:
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith(f"error: {path}:{line}: "), err


def test_directory_is_one_line_error(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_every_reference_program_checks(capsys):
    for name in ("adamw", "lion", "signum", "sgdm", "adam", "rmsprop", "adagrad", "adabelief",
                 "program4"):
        assert main(["check", name, "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["live_statements"] and info["canonical"].startswith("def train(")
