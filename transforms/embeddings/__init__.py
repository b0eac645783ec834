"""Embedding-space curation: k-means over image embeddings, semantic duplicate clusters, the nearest-neighbour index."""
