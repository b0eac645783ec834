"""Embedding-space curation: k-means over image embeddings, semantic duplicates, the index."""
