"""Augmenting the images and clips a prior's codes are drawn from: mirrored and shifted copies encoded once, or
fresh shifts encoded at every step, optionally told to the prior as augmentation labels (`--flip_augmentation`,
`--augmented_copies`, `--online_augmentation`, `--condition_on_translation` of `train_prior`)."""

import argparse
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..models.vqvae.configuration_vqvae import VQVAEConfig

AUGMENT_LABELS_KEY = "augment_labels"


def add_augmentation_args(parser: argparse.ArgumentParser) -> None:
    """The augmentation flags of `train_prior`."""
    augmentation = parser.add_argument_group("augmentation (images and video)")
    augmentation.add_argument(
        "--flip_augmentation",
        action="store_true",
        help="Images and video: also encode a horizontally flipped copy of every training example, twice the "
        "code grids from the same distribution (a regulariser for a prior that overfits). Validation stays "
        "unflipped.",
    )
    augmentation.add_argument(
        "--augmented_copies",
        type=int,
        default=0,
        help="Images and video: also encode this many copies of every training example, each shifted by a random "
        "offset of up to --max_translation pixels in height and width (reflection fills the border) and, with "
        "--flip_augmentation, mirrored at random. More distinct code grids from nearly the same distribution, for a "
        "prior that overfits its training codes. Validation stays as it is.",
    )
    augmentation.add_argument(
        "--online_augmentation",
        action="store_true",
        help="Images and video: shift every training example afresh at every step, by a random offset of up to "
        "--max_translation pixels (and, with --flip_augmentation, mirror it at random), and encode it then, instead "
        "of encoding fixed copies once: the prior never trains on the same code grid twice. Costs one encoder pass "
        "per batch; only the validation codes are cached.",
    )
    augmentation.add_argument(
        "--condition_on_translation",
        action="store_true",
        help="Non-leaking augmentation, with --online_augmentation: the prior also reads each training grid's shift "
        "as an augmentation label (a one-hot over the (2 * max_translation + 1)^2 - 1 non-zero offsets; zeros when "
        "unshifted), so that shifted grids, whose reflected borders are easier to predict than real ones, stop "
        "pulling it away from the unshifted images that validation and sampling model (zero labels). A prior "
        "loaded with --model_name_or_path gains a zero-initialised label embedding and starts out unchanged. "
        "Mirroring stays unconditioned: a mirror image is a natural image.",
    )
    augmentation.add_argument(
        "--max_translation",
        type=int,
        default=2,
        help="Largest shift, in pixels, of an --augmented_copies copy or an --online_augmentation example "
        "(default 2).",
    )


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


def flipped_horizontally(batches: Iterable[dict], input_name: str) -> Iterator[dict]:
    """The batches with their inputs mirrored left-right (the last axis: width, for images and video)."""
    for batch in batches:
        yield {**batch, input_name: batch[input_name].flip(-1)}


def translation_labels(offsets: torch.LongTensor, max_translation: int) -> torch.FloatTensor:
    """Augmentation labels of shifted examples: for offsets `(batch, 2)` into a border of `max_translation`
    pixels, a one-hot `(batch, (2 * max_translation + 1)^2 - 1)` over the non-zero shifts; all zeros for an
    unshifted example, which is what the prior sees when it samples or scores a grid."""
    side = 2 * max_translation + 1
    one_hot = F.one_hot(offsets[:, 0] * side + offsets[:, 1], side * side).float()
    unshifted = max_translation * side + max_translation
    return torch.cat([one_hot[:, :unshifted], one_hot[:, unshifted + 1 :]], dim=1)


def translation_augment_dim(max_translation: int) -> int:
    """Size of `translation_labels`: the number of non-zero shifts."""
    return (2 * max_translation + 1) ** 2 - 1


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


def augmentation_generator(seed: int, process_index: int, batch_index: int) -> torch.Generator:
    """The RNG of one batch's online augmentation, a function of the seed, the process and the batch's place in
    the run: a resumed run draws the shifts the interrupted one would have, with no RNG state to checkpoint (the
    global RNG would not do: a DataLoader draws from it when it starts an epoch, and a resumed epoch starts at a
    different point of the run)."""
    (state,) = np.random.SeedSequence([seed, process_index, batch_index]).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state))
