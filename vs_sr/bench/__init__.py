"""Speed measured side by side (scripts/benchmark.py): vs_sr, the bare runtime and vs-mlrt's plugins."""

from .speed import BenchCase, run, table

__all__ = ["BenchCase", "run", "table"]
