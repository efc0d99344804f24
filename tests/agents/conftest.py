"""Agent tests share the harness tests' fake env module."""

import sys
from pathlib import Path

HARNESS_TESTS = str(Path(__file__).resolve().parents[1] / "harness")
if HARNESS_TESTS not in sys.path:
    sys.path.insert(0, HARNESS_TESTS)
