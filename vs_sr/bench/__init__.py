"""Speed measured side by side (scripts/benchmark.py): vs_sr, the bare runtime and vs-mlrt's plugins."""

from .speed import BenchCase, precision_table, run, same_graph_table, table

__all__ = ["BenchCase", "precision_table", "run", "same_graph_table", "table"]
