"""Concept balancing: caption matching against an entry list and the per-entry caps."""
