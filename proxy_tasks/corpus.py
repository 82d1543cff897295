"""A fixed text corpus from Python standard-library source files (available offline).

The file list is fixed; the bytes come from the running interpreter's stdlib, so they can
differ between Python versions. `corpus_bytes` is part of the task data, and the suite
version hashes the data, so a different corpus yields a different suite version rather
than silently mixing fitness values.
"""

from __future__ import annotations

import os
import sysconfig

import numpy as np

STDLIB_FILES = (
    "textwrap.py", "string.py", "bisect.py", "heapq.py", "fnmatch.py", "shlex.py",
    "glob.py", "colorsys.py", "keyword.py", "queue.py", "sched.py", "calendar.py",
    "difflib.py", "fractions.py", "statistics.py", "copy.py", "functools.py", "random.py",
)
VOCAB = 128   # ASCII; the few non-ASCII bytes map to 0


def corpus_bytes(max_bytes: int) -> np.ndarray:
    """Concatenated stdlib sources as uint8 token ids, truncated to max_bytes."""
    root = sysconfig.get_paths()["stdlib"]
    chunks, total = [], 0
    for name in STDLIB_FILES:
        with open(os.path.join(root, name), "rb") as f:
            data = f.read()
        chunks.append(data)
        total += len(data)
        if total >= max_bytes:
            break
    arr = np.frombuffer(b"".join(chunks)[:max_bytes], dtype=np.uint8).copy()
    arr[arr >= VOCAB] = 0
    return arr
