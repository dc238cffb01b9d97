"""Groove: human dynamics for drum patterns (velocity and micro-timing per hit, learned from the GMD)."""
