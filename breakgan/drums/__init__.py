"""Stage: drums."""
