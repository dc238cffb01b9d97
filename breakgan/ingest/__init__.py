"""Stage: ingest."""
