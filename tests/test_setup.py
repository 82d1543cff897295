"""scripts/setup.sh chooses the torch build: the CPU wheel pinned by the lock file unless a
CUDA build is asked for (OPTSEARCH_TORCH=cuda) or a GPU is listed by nvidia-smi (auto).
Checked with --dry-run, which prints the pip commands and installs nothing."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "scripts" / "setup.sh"


def dry_run(tmp_path, mode=None, gpu=False):
    """setup.sh --dry-run with PATH holding a fake nvidia-smi (listing a GPU or failing)."""
    shim = tmp_path / "bin"
    shim.mkdir(exist_ok=True)
    smi = shim / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-0)'\n" if gpu
                   else "#!/bin/sh\nexit 9\n")
    smi.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
    env.pop("OPTSEARCH_TORCH", None)
    if mode is not None:
        env["OPTSEARCH_TORCH"] = mode
    return subprocess.run(["bash", str(SETUP), "--dry-run"], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


@pytest.mark.parametrize("mode, gpu, expected", [
    (None, False, "cpu"), (None, True, "cuda"), ("auto", True, "cuda"),
    ("cpu", True, "cpu"), ("cuda", False, "cuda")])
def test_setup_installs_the_cpu_wheel_unless_cuda_is_asked_for_or_a_gpu_is_seen(
        tmp_path, mode, gpu, expected):
    done = dry_run(tmp_path, mode, gpu)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"torch: {expected} (2.13.0)"
    installs = [line for line in lines if "pip install" in line]
    if expected == "cpu":   # the lock file's torch==2.13.0+cpu, nothing else
        assert installs[-1].endswith("-c requirements.lock -e .[dev,bench]")
        assert not any("torch==" in line for line in installs)
    else:                   # PyPI's torch 2.13.0 (the CUDA build); the rest still pinned
        assert any(line.endswith("--index-url https://pypi.org/simple torch==2.13.0")
                   for line in installs)
        assert "-c .venv/constraints-cuda.txt" in installs[-1]
        assert "torch.version.cuda is None" in lines[-1], "a CPU torch must not pass silently"


def test_an_unknown_torch_choice_is_one_error_line(tmp_path):
    done = dry_run(tmp_path, "rocm")
    assert done.returncode == 2
    assert done.stderr == "error: OPTSEARCH_TORCH must be cpu, cuda or auto, not 'rocm'\n"
