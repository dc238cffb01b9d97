"""Stage: live."""
