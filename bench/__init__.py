"""The benchmark harness: `python -m bench` (see BENCHMARKS.md for the latest figures)."""
