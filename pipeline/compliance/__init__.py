"""Beam steps of removal lists and decontamination."""
