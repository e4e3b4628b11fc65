"""Outcome measures a therapist reads across sessions, computed offline from a session's
samples and detected events (per-step gait measures, stimulated against unstimulated)."""
