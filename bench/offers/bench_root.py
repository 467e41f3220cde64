"""Puts ``bench/`` on the import path, for what the benchmarks share (``common``).

The benchmarks run as scripts (``python bench/<name>/run.py``), so only their own folder is on
the path; import this module before ``common``.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
