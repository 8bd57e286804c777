"""Yardsticks for the create function: the seed-style port and the floor (``benchmarks.versus``)."""
