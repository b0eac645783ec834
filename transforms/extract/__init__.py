"""The extract stage: image/alt-text pairs from crawl files (WARC and WAT)."""
