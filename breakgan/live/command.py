"""`breakgan live` (placeholder until the live stage lands)."""
from breakgan.errors import BreakganError


def live():
    """Stream beat, onsets and latents over OSC to TouchDesigner."""
    raise BreakganError("live is not implemented yet")
