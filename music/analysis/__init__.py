"""Listening-side analysis of arranged tracks: per-track features and distribution comparisons (no TF)."""
