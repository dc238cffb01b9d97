"""Stage: gan (PGGAN training, checkpoints, sampling, metrics).

Public API (torch is imported on first call, so importing this package stays cheap):
- `load_generator(path, device="cpu") -> (G, info)`: run folder, checkpoint or exported generator.
- `export_generator(path, out_file)`: just the EMA generator as a small .safetensors file.
"""


def load_generator(path, device="cpu"):
    """The EMA generator (eval mode, output clamped to [-1, 1]) and an info dict.

    `path` is a run folder (its latest checkpoint), a checkpoint file or an exported generator.
    `G(z, labels=None)` with z (B, info["latent_size"]) gives (B, 3, R, R), R = info["resolution"].
    info: latent_size, resolution, num_classes (0 = unconditional), labels, kimg, alpha, net, path.
    """
    from breakgan.gan.checkpoint import load_generator as _load

    return _load(path, device)


def export_generator(path, out_file):
    """Write the EMA generator of `path` (run folder or checkpoint) to `out_file` (.safetensors)."""
    from breakgan.gan.checkpoint import export_generator as _export

    return _export(path, out_file)


__all__ = ["load_generator", "export_generator"]
