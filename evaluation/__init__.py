"""Evaluate a CLIP model the way users judge one: zero-shot classification and retrieval.

``paircurate eval`` (pipeline/eval_command.py) is the command; the logic is here,
as plain Python over open_clip models, with LAION's ``clip_benchmark`` metric
functions doing the arithmetic so that figures mean what its users expect.
"""
