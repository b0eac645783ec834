"""Beam steps over the Score step's embeddings: semantic dedup."""
