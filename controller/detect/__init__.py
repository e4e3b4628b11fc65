"""Causal phase/event detectors: they see only samples up to now."""
