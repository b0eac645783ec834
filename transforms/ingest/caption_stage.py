"""The caption stage: normalise, judge and label the language of a batch of rows.

It runs before any download on every input row, so it works on batches: the
language detector sees a whole batch at once. Rows that an earlier check
already settled are still measured (their language is worth knowing) but keep
their first reason.
"""

from __future__ import annotations

from typing import Any

from paircurate.schemas.config import CaptionConfig
from paircurate.transforms.ingest.caption_rules import CaptionRules, normalize_caption
from paircurate.transforms.ingest.langid import Detection, LanguageDetector, detect_languages
from paircurate.transforms.output.ledger import drop


class CaptionStage:
    """Apply normalisation, caption rules and language id to rows; returns new rows."""

    def __init__(self, config: CaptionConfig, detector: LanguageDetector):
        self.config = config
        self.rules = CaptionRules(config)
        self.detector = detector

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        texts = [normalize_caption(row.get("caption")) for row in rows]
        detections = detect_languages(self.detector, texts, self.config.min_language_score)
        measured = []
        for row, text, detection in zip(rows, texts, detections, strict=True):
            row = {
                **row,
                "caption_normalized": text,
                "language": detection.language,
                "language_score": round(detection.score, 4),
            }
            if row.get("status") is None:
                problem = self.rules.problem(text) or self._language_problem(detection)
                if problem is not None:
                    row = drop(row, *problem)
            measured.append(row)
        return measured

    def _language_problem(self, detection: Detection) -> tuple[str, str] | None:
        if self.config.keeps_language(detection.language):
            return None
        wanted = ",".join(sorted(set(self.config.languages)))
        return "language", f"{detection.language} ({detection.score:.2f}) is not in {wanted}"
