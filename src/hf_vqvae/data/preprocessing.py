"""From a raw dataset to model-ready batches: one transform for map-style and streaming datasets, one collate.

```python
preprocessor = build_preprocessor(config, train=True)
tracker = BadExampleTracker(max_bad_fraction=0.05)
train_dataset = prepare_dataset(raw_train, preprocessor, label_column="label", tracker=tracker)
loader = DataLoader(train_dataset, batch_size=32, shuffle=True, collate_fn=collate_examples)
# batches: {"pixel_values": (B, C, H, W), "class_labels": (B,)}; tracker.summary() reports skipped examples
```
"""

from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset, IterableDataset

from ..models.vqvae.configuration_vqvae import VQVAEConfig
from ..models.vqvae.modalities import MODALITIES
from .audio import AudioPreprocessor
from .columns import disable_media_decoding, resolve_data_column, resolve_label_names
from .image import ImagePreprocessor
from .robustness import BadExampleError, BadExampleTracker, TooManyBadExamplesError
from .video import VideoPreprocessor

Preprocessor = ImagePreprocessor | AudioPreprocessor | VideoPreprocessor

# Batch keys, matching the models' `main_input_name` (DESIGN.md) and the priors' `class_labels`.
MODEL_INPUT_NAMES = {name: modality.input_name for name, modality in MODALITIES.items()}
LABEL_KEY = "class_labels"
SPEAKER_KEY = "speaker_ids"
_ID_KEYS = (LABEL_KEY, SPEAKER_KEY)
_BATCH_KEYS = ("pixel_values", "input_values", LABEL_KEY, SPEAKER_KEY)

# Examples a streaming dataset decodes at a time: small, so the first batch arrives quickly and decoded
# clips do not pile up in memory.
_STREAMING_MAP_BATCH_SIZE = 16
# Examples decoded up front to catch a wrong column before training starts.
_NUM_PROBED_EXAMPLES = 8


def build_preprocessor(
    config: VQVAEConfig, train: bool, generator: torch.Generator | None = None
) -> Preprocessor:
    """
    The preprocessor for `config.modality`, sized by `config.sample_size`, `in_channels`, `sampling_rate`
    and `fps`.

    Args:
        config ([`VQVAEConfig`]): The model's config.
        train (`bool`): Random crops / windows / clips (training) instead of centred ones (evaluation).
        generator (`torch.Generator`, *optional*): RNG for the random choices; torch's global RNG if `None`,
            which Accelerate checkpoints, so a resumed run (with `num_workers=0`) repeats them exactly.
    """
    if config.modality == "image":
        return ImagePreprocessor(
            config.sample_size, config.in_channels, random_crop=train, generator=generator
        )
    if config.modality == "audio":
        return AudioPreprocessor(
            config.sampling_rate,
            config.sample_size[0],
            config.in_channels,
            peak_level=config.audio_peak_level,
            random_window=train,
            generator=generator,
        )
    num_frames, *size = config.sample_size
    return VideoPreprocessor(
        num_frames, size, config.in_channels, config.fps, random_clip=train, generator=generator
    )


class PreprocessTransform:
    """
    Batched transform (for `Dataset.with_transform` and `IterableDataset.map(batched=True)`) that preprocesses
    the data column, passes labels through, and turns bad examples into `None` (dropped by
    [`collate_examples`]) after reporting them to the tracker.

    Args:
        preprocessor: An image, audio or video preprocessor.
        column (`str`): Column holding the raw data.
        label_column (`str`, *optional*): Column of class ids, emitted as `class_labels`.
        speaker_column (`str`, *optional*): Column of speaker ids, emitted as `speaker_ids`.
        id_column (`str`, *optional*): Column identifying examples in reports; by default the file path when
            the raw value has one, else `#n`, the example's position among those this process has seen.
        tracker ([`BadExampleTracker`], *optional*): Counts bad examples; a default one if `None`.
    """

    def __init__(
        self,
        preprocessor: Preprocessor,
        column: str,
        label_column: str | None = None,
        id_column: str | None = None,
        tracker: BadExampleTracker | None = None,
        speaker_column: str | None = None,
    ):
        self.preprocessor = preprocessor
        self.column = column
        self.label_column = label_column
        self.speaker_column = speaker_column
        self.id_column = id_column
        self.tracker = tracker if tracker is not None else BadExampleTracker()
        self.input_name = MODEL_INPUT_NAMES[preprocessor.modality]

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        inputs = []
        for index, value in enumerate(batch[self.column]):
            try:
                inputs.append(self.preprocessor(value))
                self.tracker.record_good()
            except BadExampleError as error:
                inputs.append(None)
                self.tracker.record_bad(self._example_id(batch, index, value), error)
        outputs = {self.input_name: inputs}
        if self.label_column is not None:
            outputs[LABEL_KEY] = batch[self.label_column]
        if self.speaker_column is not None:
            outputs[SPEAKER_KEY] = batch[self.speaker_column]
        return outputs

    def _example_id(self, batch: dict[str, list], index: int, value: Any) -> str:
        if self.id_column is not None:
            return str(batch[self.id_column][index])
        if isinstance(value, dict) and value.get("path"):
            return value["path"]
        return f"#{self.tracker.num_seen}"


def collate_examples(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """
    `collate_fn` for a DataLoader over a prepared dataset: drops bad examples (`None`) and stacks the rest.

    Returns:
        `dict` with `pixel_values` (B, C, H, W) or (B, T, C, H, W), or `input_values` (B, C, T); and
        `class_labels` and `speaker_ids` (B,) `torch.long` when requested. B may be smaller than the batch size.

    Raises:
        TooManyBadExamplesError: when every example of the batch is bad (there is nothing to train on).
    """
    keys = [key for key in _BATCH_KEYS if key in examples[0]]
    kept = [example for example in examples if all(example[key] is not None for key in keys)]
    if not kept:
        raise TooManyBadExamplesError(
            f"All {len(examples)} examples of a batch are bad; see the warnings above."
        )
    return {
        key: torch.stack([ex[key] for ex in kept])
        if key not in _ID_KEYS
        else torch.tensor([ex[key] for ex in kept])
        for key in keys
    }


def prepare_dataset(
    dataset: Dataset | IterableDataset,
    preprocessor: Preprocessor,
    column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    tracker: BadExampleTracker | None = None,
    speaker_column: str | None = None,
) -> Dataset | IterableDataset:
    """
    Checks a raw dataset against the preprocessor and attaches the preprocessing transform, lazily.

    Args:
        dataset: A raw `Dataset` (gets `with_transform`) or `IterableDataset` (gets `map`).
        preprocessor: From [`build_preprocessor`] or built directly.
        column (`str`, *optional*): Data column; guessed by `resolve_data_column` if `None`.
        label_column, id_column, tracker, speaker_column: See [`PreprocessTransform`].

    Returns:
        Its examples: `{"pixel_values" | "input_values": tensor or None, "class_labels": int, "speaker_ids": int}`.

    Raises:
        ValueError: for an unknown column, a column of another modality, an empty dataset, or when none of
            the first examples can be decoded as the preprocessor's modality.
    """
    column = resolve_data_column(dataset, preprocessor.modality, column)
    if label_column is not None:
        resolve_label_names(dataset, label_column)
    if id_column is not None and dataset.column_names is not None and id_column not in dataset.column_names:
        raise ValueError(
            f"id_column {id_column!r} not found; the dataset has columns {dataset.column_names}."
        )
    dataset = disable_media_decoding(dataset)
    _probe(dataset, preprocessor, column)
    transform = PreprocessTransform(preprocessor, column, label_column, id_column, tracker, speaker_column)
    if isinstance(dataset, IterableDataset):
        return dataset.map(
            transform, batched=True, batch_size=_STREAMING_MAP_BATCH_SIZE, remove_columns=dataset.column_names
        )
    return dataset.with_transform(transform)


def _probe(dataset: Dataset | IterableDataset, preprocessor: Preprocessor, column: str) -> None:
    """Fails early when the dataset is empty or none of its first examples decodes as the preprocessor's."""
    if isinstance(dataset, IterableDataset):
        values = [example[column] for example in dataset.take(_NUM_PROBED_EXAMPLES)]
    else:
        values = dataset[:_NUM_PROBED_EXAMPLES][column]
    if not values:
        raise ValueError("The dataset is empty: there is nothing to train or evaluate on.")
    errors = []
    with torch.random.fork_rng(devices=[]):  # probing must not shift the RNG stream that random crops use
        for value in values:
            try:
                preprocessor(value)
                return
            except BadExampleError as error:
                errors.append(str(error))
    raise ValueError(
        f"None of the first {len(values)} examples of column {column!r} can be read as "
        f"{preprocessor.modality} (is it the right column for this model?). First error: {errors[0]}"
    )
