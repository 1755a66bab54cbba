"""Benchmark scripts under benchmarks/ as modules, for tests of their pure parts (each loaded once per session)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(stem: str) -> ModuleType:
    """benchmarks/STEM.py, imported under a name of its own."""
    name = f"ganforge_{stem}_script"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
