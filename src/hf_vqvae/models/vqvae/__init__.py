"""The VQ-VAE: config, model, quantizer, encoder and decoder, speakers, the spectral loss."""
