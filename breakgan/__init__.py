"""breakgan: dance footage + drum patterns -> beat-synced GAN video and live OSC."""

__version__ = "0.1.0"
