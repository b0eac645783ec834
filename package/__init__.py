"""paircurate: curate web image/alt-text pairs into training-ready WebDataset shards.

The code lives in three layers, each its own folder in the repository:
``paircurate.schemas`` (data contracts), ``paircurate.transforms`` (stage logic,
never Beam) and ``paircurate.pipeline`` (Beam wiring, CLI).
"""

__version__ = "0.1.0"
