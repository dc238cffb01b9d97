"""Stage: gan."""
