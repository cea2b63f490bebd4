r"""Train an autoregressive prior (transformer or gated PixelCNN) over the codes of a trained, frozen VQ-VAE, with
Accelerate: the same script on one CPU, one GPU, many GPUs or many nodes.

    python examples/train_prior.py --vqvae_name_or_path out/shapes --dataset_name builtin:shapes \
        --label_column label --prior_type transformer --output_dir out/shapes --max_train_steps 500

The VQ-VAE stays in eval mode (its codebook never moves); it encodes the dataset once, and the codes are cached as a
`datasets` dataset that later runs reuse. The output folder is a complete pipeline folder: the VQ-VAE at its root
(written there unless it is already the VQ-VAE's own folder) and the prior in `prior/`, so
`pipeline("vq-sample", model=output_dir)` samples from it. Every `prior-checkpoint-{step}` has the same layout (a
prefix of its own, so that the VQ-VAE's `checkpoint-{step}` folders in its folder are neither pruned nor resumed).
"""

import argparse
import json
import logging
import math
import re
import time
from collections.abc import Iterable, Iterator
from copy import deepcopy
from pathlib import Path

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from datasets import concatenate_datasets
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hf_vqvae import VQPriorConfig, VQVAEConfig, VQVAEModel
from hf_vqvae.data import (
    build_preprocessor,
    collate_examples,
    prepare_dataset,
)
from hf_vqvae.evaluation.reconstruction import compare_with_code_entropy, evaluate_prior
from hf_vqvae.models.number_checks import fraction, positive_int
from hf_vqvae.models.prior.modeling_prior import VQPriorModel
from hf_vqvae.pipelines.exporting import save_samples
from hf_vqvae.pipelines.hub import push_output_dir
from hf_vqvae.training.arguments import (
    add_data_args,
    add_training_args,
    build_accelerator,
    build_lr_scheduler,
    check_full_batch,
    data_column,
    launch_command,
    load_raw_splits,
    reporting_missing_source,
)
from hf_vqvae.training.checkpointing import (
    check_finite_loss,
    load_checkpoint,
    register_pretrained_hooks,
    resolve_resume_checkpoint,
    resumable_batches,
    save_checkpoint,
    state_dict_fingerprint,
    training_loader,
)
from hf_vqvae.training.code_datasets import codes_fingerprint, encode_batches, load_or_encode_codes
from hf_vqvae.training.config_overrides import (
    apply_config_overrides,
    from_pretrained_with_overrides,
    parse_config_overrides,
)
from hf_vqvae.training.history import TrainingHistory
from hf_vqvae.training.modelcard import write_model_card
from hf_vqvae.training.plotting import plot_training_curves

CHECKPOINT_PREFIX = "prior-checkpoint"
# The architecture flags' values when a new prior is built (they are refused with --model_name_or_path).
NEW_PRIOR_DEFAULTS = {"prior_type": "transformer", "hidden_size": 256, "num_layers": 4, "num_heads": 8}
logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
        "--flip_augmentation",
        action="store_true",
        help="Images and video: also encode a horizontally flipped copy of every training example, twice the "
        "code grids from the same distribution (a regulariser for a prior that overfits). Validation stays "
        "unflipped.",
    )
    model.add_argument(
        "--augmented_copies",
        type=int,
        default=0,
        help="Images and video: also encode this many copies of every training example, each shifted by a random "
        "offset of up to --max_translation pixels in height and width (reflection fills the border) and, with "
        "--flip_augmentation, mirrored at random. More distinct code grids from nearly the same distribution, for a "
        "prior that overfits its training codes. Validation stays as it is.",
    )
    model.add_argument(
        "--online_augmentation",
        action="store_true",
        help="Images and video: shift every training example afresh at every step, by a random offset of up to "
        "--max_translation pixels (and, with --flip_augmentation, mirror it at random), and encode it then, instead "
        "of encoding fixed copies once: the prior never trains on the same code grid twice. Costs one encoder pass "
        "per batch; only the validation codes are cached.",
    )
    model.add_argument(
        "--condition_on_translation",
        action="store_true",
        help="Non-leaking augmentation, with --online_augmentation: the prior also reads each training grid's shift "
        "as an augmentation label (a one-hot over the (2 * max_translation + 1)^2 - 1 non-zero offsets; zeros when "
        "unshifted), so that shifted grids, whose reflected borders are easier to predict than real ones, stop "
        "pulling it away from the unshifted images that validation and sampling model (zero labels). A prior "
        "loaded with --model_name_or_path gains a zero-initialised label embedding and starts out unchanged. "
        "Mirroring stays unconditioned: a mirror image is a natural image.",
    )
    model.add_argument(
        "--max_translation",
        type=int,
        default=2,
        help="Largest shift, in pixels, of an --augmented_copies copy or an --online_augmentation example "
        "(default 2).",
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


def flipped_horizontally(batches: Iterable[dict], input_name: str) -> Iterator[dict]:
    """The batches with their inputs mirrored left-right (the last axis: width, for images and video)."""
    for batch in batches:
        yield {**batch, input_name: batch[input_name].flip(-1)}


AUGMENT_LABELS_KEY = "augment_labels"


def translation_labels(offsets: torch.LongTensor, max_translation: int) -> torch.FloatTensor:
    """Augmentation labels of shifted examples: for offsets `(batch, 2)` into a border of `max_translation`
    pixels, a one-hot `(batch, (2 * max_translation + 1)^2 - 1)` over the non-zero shifts; all zeros for an
    unshifted example, which is what the prior sees when it samples or scores a grid."""
    side = 2 * max_translation + 1
    one_hot = F.one_hot(offsets[:, 0] * side + offsets[:, 1], side * side).float()
    unshifted = max_translation * side + max_translation
    return torch.cat([one_hot[:, :unshifted], one_hot[:, unshifted + 1 :]], dim=1)


def randomly_translated_batch(
    batch: dict, input_name: str, max_translation: int, mirror: bool, generator: torch.Generator
) -> dict:
    """The batch with every input shifted by its own random offset of up to `max_translation` pixels along each of
    the last two axes (height and width; every frame of a clip alike), the border filled by reflection, and, if
    `mirror`, mirrored left-right with probability 1/2; the draws come from `generator`, a CPU one. With a
    shift, the batch also gets the `translation_labels` of its offsets under `AUGMENT_LABELS_KEY`."""
    inputs = batch[input_name]
    pad = max_translation
    augment_labels = {}
    if pad:
        height, width = inputs.shape[-2:]
        # Reflection padding of the last two axes takes a 3-D tensor: fold every leading axis into the first.
        padded = F.pad(inputs.flatten(0, -3), (pad, pad, pad, pad), mode="reflect")
        padded = padded.view(*inputs.shape[:-2], height + 2 * pad, width + 2 * pad)
        offsets = torch.randint(0, 2 * pad + 1, (len(inputs), 2), generator=generator)
        inputs = torch.stack(
            [
                example[..., y : y + height, x : x + width]
                for example, (y, x) in zip(padded, offsets.tolist(), strict=True)
            ]
        )
        augment_labels[AUGMENT_LABELS_KEY] = translation_labels(offsets, pad).to(inputs.device)
    if mirror:
        mirrored = (torch.rand(len(inputs), generator=generator) < 0.5).to(inputs.device)
        inputs = torch.where(mirrored.view(-1, *[1] * (inputs.dim() - 1)), inputs.flip(-1), inputs)
    return {**batch, input_name: inputs, **augment_labels}


def randomly_translated(
    batches: Iterable[dict], input_name: str, max_translation: int, mirror: bool, generator: torch.Generator
) -> Iterator[dict]:
    """`randomly_translated_batch` of every batch, all drawing from one `generator`."""
    for batch in batches:
        yield randomly_translated_batch(batch, input_name, max_translation, mirror, generator)


def load_frozen_vqvae(path: str) -> VQVAEModel:
    """The VQ-VAE in eval mode without gradients: its codebook must not move while the prior trains."""
    with reporting_missing_source("--vqvae_name_or_path", path):
        vqvae = VQVAEModel.from_pretrained(path).eval()
    vqvae.requires_grad_(False)
    return vqvae


def check_augmentation_args(args: argparse.Namespace, config: VQVAEConfig) -> None:
    """Refuse augmentation flags that do not apply to this VQ-VAE's inputs, before any data is loaded."""
    modality = config.modality
    if args.flip_augmentation and modality == "audio":
        raise ValueError(
            "--flip_augmentation mirrors images and video left-right; audio has no such symmetry (reversed "
            "speech is not speech). Drop the flag for audio models."
        )
    if args.augmented_copies < 0 or args.max_translation < 0:
        raise ValueError(
            f"--augmented_copies ({args.augmented_copies}) and --max_translation ({args.max_translation}) "
            "must be >= 0."
        )
    translating = "--augmented_copies" if args.augmented_copies else None
    if args.online_augmentation:
        if translating:
            raise ValueError(
                "--online_augmentation draws new shifts at every step; fixed --augmented_copies would add nothing. "
                "Give one of the two."
            )
        if args.streaming:
            raise ValueError(
                "--online_augmentation encodes the training examples afresh at every step, from a map-style "
                "dataset; a --streaming one has no random access. Drop one of the two flags."
            )
        translating = "--online_augmentation"
    if translating and modality == "audio":
        raise ValueError(
            f"{translating} shifts images and video in height and width; audio models take none. Drop the flag."
        )
    if translating and not (args.max_translation or args.flip_augmentation):
        raise ValueError(
            f"{translating} with --max_translation 0 and no --flip_augmentation would leave the examples as they "
            "are: give a --max_translation of at least 1 pixel."
        )
    if args.condition_on_translation and not (args.online_augmentation and args.max_translation):
        raise ValueError(
            "--condition_on_translation labels the shifts that --online_augmentation draws: give "
            "--online_augmentation and a --max_translation of at least 1 pixel."
        )
    if translating and args.max_translation >= min(config.sample_size[-2:]):
        raise ValueError(
            f"--max_translation ({args.max_translation}) must be smaller than the inputs' height and width "
            f"{tuple(config.sample_size[-2:])}."
        )


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
    cache_dir = args.codes_cache_dir or Path(datasets.config.HF_DATASETS_CACHE) / "hf_vqvae_codes"
    with accelerator.main_process_first():
        return load_or_encode_codes(
            cache_dir, codes_fingerprint(vqvae, description), splits, accelerator.is_main_process
        )


def training_examples(args, vqvae: VQVAEModel, raw_train, codes: datasets.DatasetDict):
    """What the training loader draws from: the cached code grids, or with --online_augmentation the
    preprocessed inputs themselves, encoded batch by batch in `training_codes`."""
    if not args.online_augmentation:
        return codes["train"]
    return prepared_for_encoding(args, vqvae.config, raw_train)


def augmentation_generator(seed: int, process_index: int, batch_index: int) -> torch.Generator:
    """The RNG of one batch's online augmentation, a function of the seed, the process and the batch's place in
    the run: a resumed run draws the shifts the interrupted one would have, with no RNG state to checkpoint (the
    global RNG would not do: a DataLoader draws from it when it starts an epoch, and a resumed epoch starts at a
    different point of the run)."""
    (state,) = np.random.SeedSequence([seed, process_index, batch_index]).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state))


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


def translation_augment_dim(max_translation: int) -> int:
    """Size of `translation_labels`: the number of non-zero shifts."""
    return (2 * max_translation + 1) ** 2 - 1


def with_new_parts(prior: VQPriorModel, state: dict, new_parts: tuple[str, ...], **changes) -> VQPriorModel:
    """A prior whose config is the trained `prior`'s with `changes`, holding `state` (the trained weights, under
    their names in the new model); the weights it lacks must all be new parts (names starting with one of
    `new_parts`), which keep `VQPriorModel`'s initialisation."""
    config = deepcopy(prior.config)
    for field, value in changes.items():
        setattr(config, field, value)
    extended = VQPriorModel(config)
    missing, unexpected = extended.load_state_dict(state, strict=False)
    if unexpected or not missing or not all(name.startswith(new_parts) for name in missing):
        raise ValueError(f"Could not extend the prior with {changes}: {missing=}, {unexpected=}.")
    return extended


def with_augment_labels(prior: VQPriorModel, augment_dim: int) -> VQPriorModel:
    """A copy of a trained prior that also takes augmentation labels, through a zero-initialised embedding: the
    same model until training moves it."""
    return with_new_parts(
        prior, prior.state_dict(), ("backbone.augment_embedding.",), augment_dim=augment_dim
    )


def added_layer_positions(num_layers: int, num_added_layers: int) -> list[bool]:
    """Block order of a transformer deepened by `num_added_layers`: `True` marks a new block, `False` a trained
    one (in their order). A new block follows the last trained block of each of `num_added_layers` equal groups,
    so one new block goes last."""
    after = [math.ceil((group + 1) * num_layers / num_added_layers) - 1 for group in range(num_added_layers)]
    order = []
    for index in range(num_layers):
        order += [False] + [True] * after.count(index)
    return order


def with_added_layers(prior: VQPriorModel, num_added_layers: int) -> VQPriorModel:
    """A copy of a trained transformer prior with `num_added_layers` more decoder blocks placed by
    `added_layer_positions`, whose attention and MLP output projections start at zero: each new block adds
    nothing to the residual stream, so the copy computes exactly what the trained prior did until training
    moves it, and gradients reach the new blocks through those projections."""
    if prior.config.prior_type != "transformer":
        raise ValueError(
            f"--num_added_layers deepens transformer priors; this one is a {prior.config.prior_type}."
        )
    order = added_layer_positions(prior.config.num_layers, num_added_layers)
    trained_block_positions = [position for position, is_new in enumerate(order) if not is_new]
    block_key = re.compile(r"^backbone\.decoder\.h\.(\d+)\.")
    state = {
        block_key.sub(
            lambda match: f"backbone.decoder.h.{trained_block_positions[int(match[1])]}.", name
        ): tensor
        for name, tensor in prior.state_dict().items()
    }
    new_parts = tuple(f"backbone.decoder.h.{position}." for position, is_new in enumerate(order) if is_new)
    deeper = with_new_parts(prior, state, new_parts, num_layers=len(order))
    new_blocks = [block for block, is_new in zip(deeper.backbone.decoder.h, order, strict=True) if is_new]
    with torch.no_grad():
        for block in new_blocks:
            for projection in (block.attn.c_proj, block.mlp.c_proj):
                projection.weight.zero_()
                projection.bias.zero_()
    return deeper


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


def build_prior(args, vqvae: VQVAEModel, label_names: list[str] | None) -> VQPriorModel:
    """A prior over this VQ-VAE's codebook and code grid, conditional when the data has labels."""
    augment_dim = translation_augment_dim(args.max_translation) if args.condition_on_translation else 0
    if args.num_added_layers < 0 or (args.num_added_layers and not args.model_name_or_path):
        raise ValueError(
            f"--num_added_layers ({args.num_added_layers}) deepens a trained prior: give a count >= 0 with "
            "--model_name_or_path (a new prior takes its depth from --num_layers)."
        )
    if args.model_name_or_path:
        with reporting_missing_source("--model_name_or_path", args.model_name_or_path):
            prior = from_pretrained_with_overrides(
                VQPriorModel, args.model_name_or_path, args.config_overrides
            )
        if augment_dim and not prior.config.augment_dim:
            prior = with_augment_labels(prior, augment_dim)
        if args.num_added_layers:
            prior = with_added_layers(prior, args.num_added_layers)
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
    else:
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
        }
        config = apply_config_overrides(
            VQPriorConfig, {**fields, **parse_config_overrides(args.config_overrides)}
        )
        if label_names:
            config.id2label = dict(enumerate(label_names))
            config.label2id = {name: index for index, name in enumerate(label_names)}
        prior = VQPriorModel(config)
    if augment_dim and prior.config.augment_dim != augment_dim:
        raise ValueError(
            f"The prior takes augmentation labels of size {prior.config.augment_dim}, but --max_translation "
            f"{args.max_translation} makes {augment_dim}: train it on with the --max_translation it started with."
        )
    check_prior_classes(args, prior, label_names)
    if (
        prior.config.codebook_size != vqvae.config.codebook_size
        or prior.config.code_shape != vqvae.config.code_shape
    ):
        raise ValueError(
            f"The prior (K={prior.config.codebook_size}, code_shape={prior.config.code_shape}) does not "
            f"match the VQ-VAE (K={vqvae.config.codebook_size}, code grid {vqvae.config.code_shape})."
        )
    return prior


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    resume_checkpoint = resolve_resume_checkpoint(args.resume_from_checkpoint, output_dir, CHECKPOINT_PREFIX)
    accelerator = build_accelerator(args)

    vqvae = load_frozen_vqvae(args.vqvae_name_or_path).to(accelerator.device)
    check_augmentation_args(args, vqvae.config)
    raw_train, raw_eval, label_names = load_raw_splits(args, vqvae.config.modality)
    label_names = prior_class_names(args, raw_train, raw_eval, label_names)
    prior = build_prior(args, vqvae, label_names)  # before encoding, so a bad config fails fast
    codes = encoded_splits(args, vqvae, raw_train, raw_eval, accelerator)
    train_examples = training_examples(args, vqvae, raw_train, codes)
    check_full_batch(len(train_examples) // accelerator.num_processes, args)
    effective_batch = args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info(
        "processes: %d | batch per process: %d | effective batch size: %d | train examples: %d%s",
        accelerator.num_processes,
        args.train_batch_size,
        effective_batch,
        len(train_examples),
        " (encoded afresh at every step)" if args.online_augmentation else "",
    )

    train_loader = training_loader(
        train_examples,
        batch_size=args.train_batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=collate_examples if args.online_augmentation else None,
    )
    eval_loader = (
        training_loader(codes["validation"], batch_size=args.eval_batch_size)
        if "validation" in codes
        else None
    )
    optimizer = torch.optim.AdamW(
        prior.parameters(), lr=args.learning_rate, weight_decay=args.adam_weight_decay
    )
    prior, optimizer, train_loader = accelerator.prepare(prior, optimizer, train_loader)
    scheduler, max_train_steps = build_lr_scheduler(args, accelerator, optimizer, train_loader)
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)
    register_pretrained_hooks(accelerator, {"prior": prior}, extra_save=vqvae.save_pretrained)
    if accelerator.is_main_process and accelerator.log_with:
        accelerator.init_trackers(
            "train_prior",
            config={k: v for k, v in vars(args).items() if isinstance(v, int | float | str | bool)},
        )

    global_step = load_checkpoint(accelerator, resume_checkpoint, CHECKPOINT_PREFIX, max_train_steps)
    history = TrainingHistory(
        output_dir / "prior_training_history.jsonl", accelerator, resume_step=global_step
    )

    start = time.perf_counter()
    train(
        args,
        accelerator,
        prior,
        vqvae,
        optimizer,
        scheduler,
        train_loader,
        eval_loader,
        history,
        global_step,
        max_train_steps,
    )
    finish(
        args, accelerator, prior, vqvae, codes, eval_loader, history, label_names, time.perf_counter() - start
    )
    # Every rank logs this: equal keys show that all processes ended with identical weights.
    logger.info(
        "final weights fingerprint (process %d/%d): %s",
        accelerator.process_index,
        accelerator.num_processes,
        state_dict_fingerprint(accelerator.unwrap_model(prior)),
    )
    accelerator.end_training()


def train(
    args,
    accelerator,
    prior,
    vqvae,
    optimizer,
    scheduler,
    train_loader,
    eval_loader,
    history,
    global_step,
    max_train_steps,
) -> None:
    """The optimisation loop: accumulate, step, log, validate, checkpoint."""
    progress = tqdm(
        total=max_train_steps,
        initial=global_step,
        desc="train_prior",
        disable=not accelerator.is_local_main_process,
    )
    prior.train()
    for epoch, batch_number, batch in resumable_batches(
        train_loader, accelerator, global_step, args.gradient_accumulation_steps
    ):
        if global_step >= max_train_steps:
            break
        generator = (
            augmentation_generator(args.seed, accelerator.process_index, batch_number)
            if args.online_augmentation
            else None
        )
        with accelerator.accumulate(prior):
            codes, augment_labels = training_codes(args, vqvae, batch, generator)
            loss = prior(codes, class_labels=batch.get("class_labels"), augment_labels=augment_labels).loss
            check_finite_loss(accelerator, loss, global_step + 1, args.output_dir, CHECKPOINT_PREFIX)
            accelerator.backward(loss)
            if accelerator.sync_gradients and args.max_grad_norm:
                accelerator.clip_grad_norm_(prior.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        if not accelerator.sync_gradients:
            continue
        global_step += 1
        progress.update(1)
        bits = loss.item() / math.log(2)
        progress.set_postfix(bits_per_code=f"{bits:.3f}")
        history.log(
            {"loss": loss.item(), "bits_per_code": bits, "lr": scheduler.get_last_lr()[0], "epoch": epoch},
            step=global_step,
        )
        if eval_loader is not None and global_step % args.validation_steps == 0:
            validate(accelerator, prior, vqvae, eval_loader, history, global_step)
        if global_step % args.checkpointing_steps == 0:
            save_checkpoint(
                accelerator, args.output_dir, global_step, args.checkpoints_total_limit, CHECKPOINT_PREFIX
            )
    progress.close()


def validate(accelerator, prior, vqvae, eval_loader, history, global_step: int) -> dict[str, float]:
    """Prior NLL over the whole validation set, in bits per code and per input dimension."""
    dims_per_example = vqvae.config.in_channels * math.prod(vqvae.config.sample_size)
    batches = ({"codes": b["codes"].long(), "class_labels": b.get("class_labels")} for b in eval_loader)
    results = evaluate_prior(accelerator.unwrap_model(prior), batches, dims_per_example, accelerator)
    history.log_evaluation(results, step=global_step)
    logger.info("step %d validation: %s", global_step, {k: round(v, 4) for k, v in results.items()})
    return results


def last_reconstruction_metrics(vqvae_path: str) -> dict[str, float]:
    """The VQ-VAE's final validation metrics, from the history train_vqvae.py left in its folder (if local)."""
    history = Path(vqvae_path) / "training_history.jsonl"
    if not history.exists():
        return {}
    evaluations = [
        record for record in map(json.loads, history.read_text().splitlines()) if "eval_mse" in record
    ]
    if not evaluations:
        return {}
    return {k.removeprefix("eval_"): v for k, v in evaluations[-1].items() if k.startswith("eval_")}


@torch.no_grad()
def save_prior_samples(
    prior: VQPriorModel, vqvae: VQVAEModel, label_names, num_samples: int, output_dir: Path, seed: int
) -> list[Path]:
    """Samples from the prior, decoded: one row per class for a conditional prior."""
    generator = torch.Generator(device=prior.device).manual_seed(seed)
    if label_names:
        per_class = max(1, num_samples // len(label_names))
        labels = torch.arange(len(label_names)).repeat_interleave(per_class).to(prior.device)
        codes = prior.generate(len(labels), class_labels=labels, generator=generator, show_progress_bar=True)
        rows = len(label_names)
    else:
        codes = prior.generate(num_samples, generator=generator, show_progress_bar=True)
        rows = None
    return save_samples(
        vqvae.decode(codes.to(vqvae.device)), vqvae.config, output_dir, prefix="prior_sample", rows=rows
    )


def finish(
    args, accelerator, prior, vqvae, codes, eval_loader, history, label_names, training_seconds
) -> None:
    """Final validation, then the pipeline folder: VQ-VAE at the root, prior in prior/, samples, curves, card."""
    output_dir = Path(args.output_dir)
    results = history.evaluation_at(history.last_step)  # the loop's validation of these weights, if any
    if results is None:
        results = (
            validate(accelerator, prior, vqvae, eval_loader, history, history.last_step)
            if eval_loader is not None
            else {}
        )
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    unwrapped = accelerator.unwrap_model(prior).eval()
    if "validation" in codes:
        results |= compare_with_code_entropy(
            results["prior_bits_per_code"], codes["validation"][:]["codes"].long(), vqvae.config.codebook_size
        )
    if Path(args.vqvae_name_or_path).resolve() != output_dir.resolve():
        vqvae.save_pretrained(output_dir)
    unwrapped.save_pretrained(output_dir / "prior")
    samples = save_prior_samples(
        unwrapped, vqvae, label_names, args.num_validation_samples, output_dir / "samples", args.seed
    )
    samples.append(
        plot_training_curves(history.records, output_dir / "samples" / "prior_training_curves.png")
    )
    metrics = {**last_reconstruction_metrics(args.vqvae_name_or_path), **results}
    metrics.pop("num_eval_examples", None)
    write_model_card(
        output_dir,
        model_id=args.hub_model_id or output_dir.name,
        config=vqvae.config,
        prior_config=unwrapped.config,
        metrics=metrics,
        training_command=launch_command(accelerator),
        datasets=[args.dataset_name] if args.dataset_name else [],
        sample_files=[str(Path(p).relative_to(output_dir)) for p in samples],
        training_time=f"prior: {training_seconds / 60:.1f} minutes on {accelerator.num_processes} process(es)",
    )
    if args.push_to_hub:
        push_output_dir(output_dir, args.hub_model_id or output_dir.name, args.hub_token, args.logging_dir)


if __name__ == "__main__":
    main()
