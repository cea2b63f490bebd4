"""The models: the VQ-VAE (`models.vqvae`) and the priors over its codes (`models.prior`). They import only torch,
transformers and one another, so that they can travel inside a Hub folder as remote code."""
