"""Benchmark: the real bot against the sandbox with time compressed, adaptive vs. baseline.

`python -m bench` runs each scenario twice (the adaptive scheduler, then the same bot with a
fixed 5 s poll and no request budget), and prints one markdown table. See README "Benchmark".
"""
