r"""Train an autoregressive prior (transformer or gated PixelCNN) over the codes of a trained, frozen VQ-VAE, with
Accelerate: the same script on one CPU, one GPU, many GPUs or many nodes. The training loop lives in the library
(`hf_vqvae.training.train_prior`); this script runs it with the same flags.

    python examples/train_prior.py --vqvae_name_or_path out/shapes --dataset_name builtin:shapes \
        --label_column label --prior_type transformer --output_dir out/shapes --max_train_steps 500

The output folder is a complete pipeline folder: the VQ-VAE at its root and the prior in `prior/`, so
`pipeline("vq-sample", model=output_dir)` samples from it. `python examples/train_prior.py --help` lists the flags.
"""

from hf_vqvae.training.train_prior import main

if __name__ == "__main__":
    main()
