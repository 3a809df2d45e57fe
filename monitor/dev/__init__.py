"""Tooling for developers and benchmarks: synthetic survey worlds with known, planted effects."""
