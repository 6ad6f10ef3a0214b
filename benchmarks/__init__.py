"""Benchmarks: speed, memory and accuracy measured as ratios against a baseline in the same run."""
