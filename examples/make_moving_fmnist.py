r"""Build the Moving Fashion-MNIST video dataset (the Moving-MNIST protocol over Fashion-MNIST sprites) as parquet.

    apt-get install dataset-fashion-mnist      # Debian's copy of the original IDX files
    python examples/make_moving_fmnist.py --output_dir data/moving-fmnist
    python examples/train_vqvae.py --data_files data/moving-fmnist/train.parquet \
        --validation_data_files data/moving-fmnist/validation.parquet --video_column video --modality video ...

Clips of 16 frames, 64x64, grayscale, two 28x28 sprites bouncing, max-composited (Srivastava et al., 2015).
Validation clips are built from other sprites than training clips (the last `--num_validation_sprites` of the
Fashion-MNIST train images), so validation measures how the model does on unseen garments, not on memorised
ones; `--sprite_split test` builds clips from the Fashion-MNIST test images instead.
"""

import argparse
from pathlib import Path

import numpy as np

from hf_vqvae.data import make_moving_mnist, read_fashion_mnist
from hf_vqvae.data.idx import FASHION_MNIST_DIR


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--output_dir", required=True, help="Folder for train.parquet and validation.parquet."
    )
    parser.add_argument("--fashion_mnist_dir", default=FASHION_MNIST_DIR, help="Folder of the IDX files.")
    parser.add_argument("--num_train_clips", type=int, default=20000)
    parser.add_argument("--num_validation_clips", type=int, default=1000)
    parser.add_argument(
        "--num_validation_sprites",
        type=int,
        default=10000,
        help="Fashion-MNIST train images reserved for validation clips (the last ones).",
    )
    parser.add_argument(
        "--sprite_split",
        choices=["train", "test"],
        default="train",
        help="Fashion-MNIST split the sprites come from; `test` writes only test.parquet.",
    )
    parser.add_argument("--num_frames", type=int, default=16)
    parser.add_argument("--canvas_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def clip_splits(args: argparse.Namespace, sprites: np.ndarray) -> dict[str, tuple[np.ndarray, int, int]]:
    """Each split to write: its sprites, number of clips and seed. Validation sprites are the last
    `--num_validation_sprites` train images, never used by training clips."""
    if args.sprite_split == "test":
        return {"test": (sprites, args.num_validation_clips, args.seed + 2)}
    if not 0 < args.num_validation_sprites < len(sprites):
        raise ValueError(
            f"--num_validation_sprites must lie in (0, {len(sprites)}), got {args.num_validation_sprites}."
        )
    return {
        "train": (sprites[: -args.num_validation_sprites], args.num_train_clips, args.seed),
        "validation": (sprites[-args.num_validation_sprites :], args.num_validation_clips, args.seed + 1),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sprites, _ = read_fashion_mnist(args.fashion_mnist_dir, args.sprite_split)
    splits = clip_splits(args, sprites)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, (split_sprites, num_clips, seed) in splits.items():
        clips = make_moving_mnist(
            split_sprites, num_clips, num_frames=args.num_frames, canvas_size=args.canvas_size, seed=seed
        )
        path = output_dir / f"{name}.parquet"
        clips.to_parquet(str(path))
        print(f"{path}: {num_clips} clips from {len(split_sprites)} sprites")


if __name__ == "__main__":
    main()
