"""Train or fine-tune a VQ-VAE with Accelerate on a `datasets` dataset: the same script on one CPU, one GPU, many
GPUs or many nodes. The training loop lives in the library (`hf_vqvae.training.train_vqvae`); this script runs it
with the same flags.

    python examples/train_vqvae.py --dataset_name builtin:shapes --output_dir out/shapes --max_train_steps 200
    accelerate launch --num_processes 2 examples/train_vqvae.py --data_files train.parquet --image_column img ...
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 examples/train_vqvae.py ...  # 2 CPU procs

`python examples/train_vqvae.py --help` lists the flags.
"""

from hf_vqvae.training.train_vqvae import main

if __name__ == "__main__":
    main()
