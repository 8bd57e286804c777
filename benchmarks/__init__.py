"""Benchmark suite of the broker: `make bench` (python -m benchmarks.run)."""
