"""`breakgan run` (pipelines/*.toml runner) and `breakgan demo`."""

from breakgan.pipeline.command import demo, run

__all__ = ["demo", "run"]
