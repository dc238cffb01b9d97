"""Stage: render — beat-synced latent morphing video, one image stream per drum part, with footage.

Python API (torch is imported on first call):
- `render_video(out, generator, drums=None, audio=None, footage=None, **options) -> Path` of OUT/render.mp4.
"""


def render_video(out, generator, drums=None, audio=None, footage=None, **options):
    """Render OUT/render.mp4 + OUT/breakgan.json; see breakgan.render.video.render_video for options."""
    from breakgan.render.video import render_video as _render

    return _render(out, generator, drums, audio, footage, **options)


__all__ = ["render_video"]
