"""Data contracts: Arrow schemas, status and reason codes, job configuration."""
