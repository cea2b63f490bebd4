"""Training: the VQ-VAE and prior training scripts (`python -m hf_vqvae.training.train_vqvae`, `...train_prior`),
their flags, checkpoints, histories, model cards, and the offline demo."""
