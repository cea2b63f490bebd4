"""The code grids a prior trains on: a frozen VQ-VAE encodes the (augmented) training and validation splits once and
they are cached (`code_datasets`), or with online augmentation it encodes each training batch afresh."""

from pathlib import Path

import datasets
import torch
from accelerate import Accelerator
from datasets import concatenate_datasets
from torch.utils.data import DataLoader

from ..data import build_preprocessor, collate_examples, prepare_dataset
from ..models.vqvae.configuration_vqvae import VQVAEConfig
from ..models.vqvae.modeling_vqvae import VQVAEModel
from .arguments import data_column, reporting_missing_source
from .augmentation import (
    AUGMENT_LABELS_KEY,
    flipped_horizontally,
    randomly_translated,
    randomly_translated_batch,
)
from .code_datasets import codes_fingerprint, encode_batches, load_or_encode_codes


def load_frozen_vqvae(path: str) -> VQVAEModel:
    """The VQ-VAE in eval mode without gradients: its codebook must not move while the prior trains."""
    with reporting_missing_source("--vqvae_name_or_path", path):
        vqvae = VQVAEModel.from_pretrained(path).eval()
    vqvae.requires_grad_(False)
    return vqvae


def prepared_for_encoding(args, config: VQVAEConfig, raw_split):
    """A raw split with the deterministic (centred) preprocessing: the prior models the codes of whole examples."""
    preprocessor = build_preprocessor(config, train=False)
    return prepare_dataset(raw_split, preprocessor, data_column(args, config.modality), args.label_column)


def encoded_splits(
    args, vqvae: VQVAEModel, raw_train, raw_eval, accelerator: Accelerator
) -> datasets.DatasetDict:
    """Train/validation code datasets, encoded once by the main process and cached for every later run."""

    def encoder_of(raw_split, name, augment=False):
        prepared = prepared_for_encoding(args, vqvae.config, raw_split)
        loader = DataLoader(prepared, batch_size=args.eval_batch_size, collate_fn=collate_examples)

        def encode():
            codes = [encode_batches(vqvae, loader, f"encoding {name}")]
            if not augment:
                return codes[0]
            if args.flip_augmentation:
                flipped = flipped_horizontally(loader, vqvae.main_input_name)
                codes.append(encode_batches(vqvae, flipped, f"encoding flipped {name}"))
            for copy in range(args.augmented_copies):
                generator = torch.Generator().manual_seed(args.seed + copy)
                translated = randomly_translated(
                    loader, vqvae.main_input_name, args.max_translation, args.flip_augmentation, generator
                )
                codes.append(encode_batches(vqvae, translated, f"encoding translated {name} ({copy + 1})"))
            return concatenate_datasets(codes)

        return encode

    # With --online_augmentation the training inputs are encoded at every step instead (`training_codes`).
    splits = {} if args.online_augmentation else {"train": encoder_of(raw_train, "train", augment=True)}
    if raw_eval is not None:
        splits["validation"] = encoder_of(raw_eval, "validation")
    description = codes_description(args, vqvae, raw_train, raw_eval)
    cache_dir = args.codes_cache_dir or Path(datasets.config.HF_DATASETS_CACHE) / "hf_vqvae_codes"
    with accelerator.main_process_first():
        return load_or_encode_codes(
            cache_dir, codes_fingerprint(vqvae, description), splits, accelerator.is_main_process
        )


def codes_description(args, vqvae: VQVAEModel, raw_train, raw_eval) -> dict:
    """What the cached codes depend on besides the VQ-VAE: the data flags, the column, and the data itself."""
    description = {
        k: getattr(args, k)
        for k in (
            "dataset_name",
            "dataset_config_name",
            "train_data_dir",
            "data_files",
            "validation_data_files",
            "validation_data_dir",
            "label_column",
            "validation_split_percentage",
            "max_train_samples",
            "max_eval_samples",
            "seed",
            "builtin_num_examples",
            "flip_augmentation",
            "augmented_copies",
            "max_translation",
            "online_augmentation",
        )
    }
    description["column"] = data_column(args, vqvae.config.modality)
    # What the files hold, not only where they are: `datasets` fingerprints a map-style split from its files'
    # paths and modification times, and the features name the classes (for streamed data too).
    description["data"] = [
        (getattr(raw, "_fingerprint", None), str(raw.features))
        for raw in (raw_train, raw_eval)
        if raw is not None
    ]
    return description


def training_examples(args, vqvae: VQVAEModel, raw_train, codes: datasets.DatasetDict):
    """What the training loader draws from: the cached code grids, or with --online_augmentation the
    preprocessed inputs themselves, encoded batch by batch in `training_codes`."""
    if not args.online_augmentation:
        return codes["train"]
    return prepared_for_encoding(args, vqvae.config, raw_train)


@torch.no_grad()
def training_codes(
    args, vqvae: VQVAEModel, batch: dict, generator: torch.Generator | None = None
) -> tuple[torch.LongTensor, torch.FloatTensor | None]:
    """The batch's code grids: the cached ones, or with --online_augmentation the frozen VQ-VAE's codes of its
    inputs shifted (and mirrored) afresh, with draws from `generator`; and with --condition_on_translation their
    augmentation labels (else `None`)."""
    if not args.online_augmentation:
        return batch["codes"].long(), None
    augmented = randomly_translated_batch(
        batch, vqvae.main_input_name, args.max_translation, args.flip_augmentation, generator
    )
    augment_labels = augmented[AUGMENT_LABELS_KEY] if args.condition_on_translation else None
    return vqvae.encode(augmented[vqvae.main_input_name]).codes, augment_labels
