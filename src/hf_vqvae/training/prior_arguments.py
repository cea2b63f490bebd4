"""The command-line flags of `train_prior`: the VQ-VAE and prior, a new prior's architecture, augmentation, data and
training."""

import argparse

from ..models.number_checks import fraction, positive_int
from .arguments import add_data_args, add_training_args
from .augmentation import add_augmentation_args

# The architecture flags' values when a new prior is built (they are refused with --model_name_or_path).
NEW_PRIOR_DEFAULTS = {"prior_type": "transformer", "hidden_size": 256, "num_layers": 4, "num_heads": 8}


def add_prior_model_args(parser: argparse.ArgumentParser) -> None:
    """The flags that choose the VQ-VAE and the prior (a trained one, or a new one's architecture)."""
    model = parser.add_argument_group("model")
    model.add_argument(
        "--vqvae_name_or_path", required=True, help="The trained VQ-VAE (local folder or Hub id)."
    )
    model.add_argument(
        "--model_name_or_path",
        help="Fine-tune this prior (a folder holding config.json, or its pipeline folder's prior/).",
    )
    model.add_argument(
        "--num_added_layers",
        type=int,
        default=0,
        help="With --model_name_or_path and a transformer prior: deepen it by this many new blocks before training "
        "(block expansion, Wu et al. 2024, LLaMA Pro), spread evenly between the trained ones, each starting as the "
        "identity (zero output projections), so the deeper prior starts out computing what the trained one did.",
    )
    model.add_argument(
        "--axial_positions",
        action="store_true",
        help="Transformer prior: add learned axial position embeddings (one table per axis of the code grid, as in "
        "VideoGPT), so that codes in the same row, column or time slice share part of their position. A prior "
        "loaded with --model_name_or_path gains them at zero, so it starts out computing what it did.",
    )
    architecture = parser.add_argument_group("architecture of a new prior (defaults in brackets)")
    architecture.add_argument("--prior_type", choices=["transformer", "pixelcnn"], help="[transformer]")
    architecture.add_argument("--hidden_size", type=positive_int, help="[256]")
    architecture.add_argument("--num_layers", type=positive_int, help="[4]")
    architecture.add_argument("--num_heads", type=positive_int, help="[8]")
    model.add_argument(
        "--config_overrides",
        help='Other VQPriorConfig fields, e.g. "dropout=0.1,kernel_size=5"; with --model_name_or_path, only '
        "fields that keep the weights' shapes (e.g. dropout).",
    )
    model.add_argument(
        "--condition_dropout",
        type=fraction,
        help="Classifier-free guidance: replace the class label of this fraction of training examples by a learned "
        '"no label" (e.g. 0.1), so that the prior also learns the unconditional distribution that '
        "generate(guidance_scale=...) contrasts the class with. A conditional prior loaded with --model_name_or_path "
        "gains that label (initialised to the mean of its class embeddings) and keeps its classes. Default: the "
        "loaded prior's own fraction, or 0 for a new prior.",
    )
    model.add_argument(
        "--codes_cache_dir", help="Where encoded datasets are cached (default: the datasets cache)."
    )


def parse_args(argv: list[str] | None = None, description: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_prior_model_args(parser)
    add_augmentation_args(parser)
    add_data_args(parser)
    add_training_args(parser)
    parser.set_defaults(learning_rate=3e-4, train_batch_size=64)
    args = parser.parse_args(argv)
    given = [f"--{name}" for name in NEW_PRIOR_DEFAULTS if getattr(args, name) is not None]
    if args.model_name_or_path and given:
        parser.error(
            f"{', '.join(given)} set the architecture of a new prior; --model_name_or_path trains on one with its "
            "own. Drop them (--config_overrides changes fields that keep the weights' shapes, e.g. dropout)."
        )
    if args.condition_dropout and not args.label_column:
        parser.error(
            f"--condition_dropout {args.condition_dropout} drops class labels, but no --label_column gives any: "
            "give the column of class ids, or leave --condition_dropout out for an unconditional prior."
        )
    for name, default in NEW_PRIOR_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args
