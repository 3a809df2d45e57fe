"""Ingest: read export files and API payloads, validate every row, write all-or-nothing."""
