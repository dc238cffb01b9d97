"""`breakgan render` (placeholder until the render stage lands)."""
from breakgan.errors import BreakganError


def render():
    """Render beat-synced latent morphing video."""
    raise BreakganError("render is not implemented yet")
