"""Scoring detectors against reference events: shared by the tests and the benchmarks."""
