"""Data stages: schema (the contract), simulate, ingest and store."""
