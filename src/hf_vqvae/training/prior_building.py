"""The prior `train_prior` trains: a new one over the VQ-VAE's codes, or a trained one with what the flags add;
conditioned on the classes of `--label_column`, checked against the data and the VQ-VAE before any encoding."""

import logging

import datasets

from ..models.prior.configuration_prior import VQPriorConfig
from ..models.prior.modeling_prior import VQPriorModel
from ..models.vqvae.modeling_vqvae import VQVAEModel
from .arguments import reporting_missing_source
from .augmentation import translation_augment_dim
from .config_overrides import apply_config_overrides, from_pretrained_with_overrides, parse_config_overrides

logger = logging.getLogger(__name__)


def build_prior(args, vqvae: VQVAEModel, label_names: list[str] | None) -> VQPriorModel:
    """A prior over this VQ-VAE's codebook and code grid, conditional when the data has labels."""
    augment_dim = translation_augment_dim(args.max_translation) if args.condition_on_translation else 0
    if args.num_added_layers < 0 or (args.num_added_layers and not args.model_name_or_path):
        raise ValueError(
            f"--num_added_layers ({args.num_added_layers}) deepens a trained prior: give a count >= 0 with "
            "--model_name_or_path (a new prior takes its depth from --num_layers)."
        )
    prior = (
        pretrained_prior(args, augment_dim)
        if args.model_name_or_path
        else new_prior(args, vqvae, label_names, augment_dim)
    )
    if augment_dim and prior.config.augment_dim != augment_dim:
        raise ValueError(
            f"The prior takes augmentation labels of size {prior.config.augment_dim}, but --max_translation "
            f"{args.max_translation} makes {augment_dim}: train it on with the --max_translation it started with."
        )
    check_prior_classes(args, prior, label_names)
    prior.config.check_matches(vqvae.config)
    return prior


def pretrained_prior(args, augment_dim: int) -> VQPriorModel:
    """The prior of --model_name_or_path, given what the flags add: augmentation labels, layers, a "no label"."""
    with reporting_missing_source("--model_name_or_path", args.model_name_or_path):
        prior = from_pretrained_with_overrides(VQPriorModel, args.model_name_or_path, args.config_overrides)
    if augment_dim and not prior.config.augment_dim:
        prior = prior.with_augment_labels(augment_dim)
    if args.num_added_layers:
        prior = prior.with_added_layers(args.num_added_layers)
    if args.axial_positions and not prior.config.axial_positions:
        prior = prior.with_axial_positions()
    if args.condition_dropout is not None and prior.config.null_label_id is not None:
        if not args.condition_dropout:
            raise ValueError(
                "--condition_dropout 0: this prior was trained with condition dropout and holds a 'no label'; "
                "give a fraction in (0, 1) or leave the flag out to keep its own "
                f"({prior.config.condition_dropout})."
            )
        prior.config.condition_dropout = args.condition_dropout
    elif args.condition_dropout:
        prior.add_null_label(args.condition_dropout)
    return prior


def new_prior(args, vqvae: VQVAEModel, label_names: list[str] | None, augment_dim: int) -> VQPriorModel:
    """A new prior of the flags' architecture over this VQ-VAE's codebook and code grid."""
    fields = {
        "prior_type": args.prior_type,
        "codebook_size": vqvae.config.codebook_size,
        "code_shape": vqvae.config.code_shape,
        "num_classes": len(label_names or []),
        "hidden_size": args.hidden_size,
        "num_layers": args.num_layers,
        "num_heads": args.num_heads,
        "augment_dim": augment_dim,
        "condition_dropout": args.condition_dropout or 0.0,
        "axial_positions": args.axial_positions,
    }
    config = apply_config_overrides(
        VQPriorConfig, {**fields, **parse_config_overrides(args.config_overrides)}
    )
    if label_names:
        config.id2label = dict(enumerate(label_names))
        config.label2id = {name: index for index, name in enumerate(label_names)}
    prior = VQPriorModel(config)
    return prior


def prior_class_names(args, raw_train, raw_eval, label_names: list[str] | None) -> list[str] | None:
    """The classes the prior is conditioned on, checked before any encoding: a ClassLabel's names, or for a plain
    integer column the ids 0..max as names. Rows without a class (-1, `datasets`' mark for unlabelled) cannot
    condition a prior."""
    if not args.label_column:
        return None
    splits = [raw for raw in (raw_train, raw_eval) if isinstance(raw, datasets.Dataset)]
    labels = [label for raw in splits for label in raw[args.label_column]]
    if labels and min(labels) < 0:
        raise ValueError(
            f"--label_column {args.label_column!r}: {sum(label < 0 for label in labels)} rows have no class (label "
            f"{min(labels)}); a class-conditional prior needs a class for every row. Drop those rows first, e.g. "
            f"dataset.filter(lambda row: row[{args.label_column!r}] >= 0)."
        )
    if label_names is not None:
        return label_names
    if any(isinstance(raw, datasets.IterableDataset) for raw in (raw_train, raw_eval)):
        raise ValueError(
            f"--label_column {args.label_column!r} holds plain integers, and a streamed dataset cannot tell how "
            "many classes they span: cast the column to a datasets.ClassLabel, or train without --streaming."
        )
    return [str(index) for index in range(max(labels) + 1)] if labels else None


def check_prior_classes(args, prior: VQPriorModel, label_names: list[str] | None) -> None:
    """Fail unless the prior models as many classes as `--label_column` gives (none without it); a fine-tuned
    prior takes the data's class names, so that the pipeline names its samples' classes right."""
    num_classes = len(label_names or [])
    if prior.config.num_classes != num_classes:
        data = (
            f"--label_column {args.label_column!r} gives {num_classes}"
            if args.label_column
            else "no --label_column"
        )
        raise ValueError(
            f"The prior is conditioned on {prior.config.num_classes} classes, but the training data has "
            f"{data}. Give the --label_column of a dataset with as many classes as the prior, or train a new prior."
        )
    names = dict(enumerate(label_names or []))
    if names and prior.config.id2label != names:
        logger.warning("The prior's class names %s become the data's: %s.", prior.config.id2label, names)
        prior.config.id2label = names
        prior.config.label2id = {name: index for index, name in names.items()}
