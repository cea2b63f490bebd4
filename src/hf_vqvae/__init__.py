"""hf_vqvae: VQ-VAE and autoregressive code priors as Hugging Face models, for images, audio and video."""

from .configuration_prior import VQPriorConfig
from .configuration_vqvae import VQVAEConfig

__version__ = "0.1.0"

__all__ = ["VQPriorConfig", "VQVAEConfig", "__version__"]
