"""Shared by the tests of bench/ scripts (they are files, not an importable package)."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench_module():
    """``bench_module("train_gpu")``: the script bench/train_gpu.py loaded as a module."""

    def load(name):
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
