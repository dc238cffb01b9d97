"""Export the EMA generator of a training run as the small file the demo ships.

    python assets/demo/export_generator.py RUN_FOLDER --out assets/demo/generator.safetensors

RUN_FOLDER is what `breakgan train ... --out RUN_FOLDER` wrote (its latest checkpoint is used).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from breakgan.gan import export_generator, load_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run folder or checkpoint from breakgan train")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("generator.safetensors"))
    a = ap.parse_args()
    out = export_generator(a.run, a.out)
    out.chmod(0o644)  # written through a private temp file; an asset is meant to be readable
    _, info = load_generator(out)  # fails loudly if the export cannot be read back
    print(f"{out}: {info['resolution']} px, latent {info['latent_size']}, {info['kimg']:.1f} kimg, "
          f"{out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
