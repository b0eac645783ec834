"""Beam steps of concept balancing: per-entry counts and the capped decision."""
