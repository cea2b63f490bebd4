"""The autoregressive priors over VQ-VAE codes: config, model, the transformer and gated PixelCNN backbones,
guidance, model surgery."""
