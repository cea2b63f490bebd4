"""Finding, checking and casting the columns that hold the data and the labels, before any training starts."""

from __future__ import annotations

import dataclasses

from datasets import (
    Array2D,
    Array3D,
    Array4D,
    Audio,
    ClassLabel,
    Dataset,
    Features,
    IterableDataset,
    LargeList,
    List,
    Value,
)
from datasets import Image as ImageFeature
from datasets import Video as VideoFeature

# Column looked for first when none is named, as in the HF example scripts (`--image_column image`).
DEFAULT_DATA_COLUMNS = {"image": "image", "audio": "audio", "video": "video"}

# What `Audio(decode=False)` / `Video(decode=False)` give; used for the columns this package builds itself,
# because a `datasets.Audio` feature cannot even be encoded without torchcodec.
ENCODED_MEDIA = {"bytes": Value("binary"), "path": Value("string")}

_MODALITY_OF_FEATURE = {
    ImageFeature: "image",
    Array2D: "image",
    Audio: "audio",
    VideoFeature: "video",
    Array4D: "video",
}
# Channel counts of an (H, W, C) image array; any other last axis makes an Array3D a (T, H, W) grey video.
IMAGE_CHANNEL_COUNTS = (1, 3, 4)


def feature_modality(feature) -> str | None:
    """The modality a `datasets` feature holds (`"image"`, `"audio"`, `"video"`), or `None` when it does not
    tell (e.g. file paths or `{"bytes", "path"}` structs, whose content is only known once decoded). A list of
    images holds a video's frames; an `Array3D` is an (H, W, C) image or a (T, H, W) grey video."""
    if isinstance(feature, Array3D):
        return "image" if feature.shape[-1] in IMAGE_CHANNEL_COUNTS else "video"
    if _is_frame_list(feature):
        return "video"
    return _MODALITY_OF_FEATURE.get(type(feature))


def _is_frame_list(feature) -> bool:
    return isinstance(feature, (List, LargeList)) and isinstance(feature.feature, ImageFeature)


def _columns_by_modality(features: Features) -> dict[str, str]:
    return {name: modality for name, feature in features.items() if (modality := feature_modality(feature))}


def resolve_data_column(dataset: Dataset | IterableDataset, modality: str, column: str | None = None) -> str:
    """
    Returns the column holding the `modality` data, checking it exists and holds that modality.

    Args:
        dataset: The raw dataset.
        modality (`str`): `"image"`, `"audio"` or `"video"` (the model's `config.modality`).
        column (`str`, *optional*): The column named by the user. If `None`: `DEFAULT_DATA_COLUMNS[modality]`
            when present, else the only column whose feature holds `modality` (e.g. CIFAR-10's `img`).

    Raises:
        ValueError: naming the columns available, when the column is missing, ambiguous, or holds another
            modality (e.g. an audio model pointed at an image column).
    """
    names, features = dataset.column_names, dataset.features
    if column is None:
        column = _guess_data_column(names, features, modality)
    elif names is not None and column not in names:
        raise ValueError(f"Column {column!r} not found; the dataset has columns {names}.")
    found = feature_modality(features[column]) if features is not None else None
    if found is not None and found != modality:
        raise ValueError(
            f"Column {column!r} holds {found} data ({features[column]}) but the model's modality is "
            f"{modality!r}. Columns by modality: {_columns_by_modality(features)}."
        )
    return column


def _guess_data_column(names: list[str] | None, features: Features | None, modality: str) -> str:
    default = DEFAULT_DATA_COLUMNS[modality]
    if names is None or default in names:
        return default
    by_modality = _columns_by_modality(features or {})
    candidates = [name for name, found in by_modality.items() if found == modality]
    if len(candidates) == 1:
        return candidates[0]
    # Columns named after another modality say what the data is when their feature does not (`{"bytes", "path"}`).
    named = {name: found for found, name in DEFAULT_DATA_COLUMNS.items() if name in names}
    if not candidates and (by_modality or named):  # e.g. an audio model given an image dataset
        found = sorted(set(by_modality.values()) | set(named.values()))
        advice = f"The data is {found}: use a model of the data's modality."
    else:
        advice = f"Name one of {names} explicitly."
    raise ValueError(
        f"Cannot tell which column holds the {modality} data: none is named {default!r} and "
        f"{len(candidates)} have a {modality} feature (columns by modality: {by_modality}). {advice}"
    )


def resolve_label_names(dataset: Dataset | IterableDataset, label_column: str) -> list[str] | None:
    """
    Checks `label_column` holds class ids and returns the class names (for `config.id2label`).

    Returns:
        `list[str]` for a `ClassLabel` column, `None` for a plain integer column (ids without names).

    Raises:
        ValueError: when the column is missing (listing the columns) or does not hold integer class ids.
    """
    names, features = dataset.column_names, dataset.features
    if names is not None and label_column not in names:
        raise ValueError(f"Label column {label_column!r} not found; the dataset has columns {names}.")
    feature = features[label_column] if features is not None else None
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    if feature is None or (isinstance(feature, Value) and feature.dtype.startswith(("int", "uint"))):
        return None
    raise ValueError(
        f"Label column {label_column!r} must hold class ids (a ClassLabel or integer column), got {feature}. "
        f"Encode it first, e.g. `dataset.class_encode_column({label_column!r})`."
    )


def disable_media_decoding(dataset: Dataset | IterableDataset) -> Dataset | IterableDataset:
    """
    Casts every `Image`, `Audio` and `Video` column, and every list of images (video frames), to `decode=False`,
    so values come as `{"bytes", "path"}` (a list of them for frames).

    hf_vqvae decodes them itself: `datasets` needs torchcodec for audio and video, and an image that fails
    inside `datasets`' decoder would crash the DataLoader instead of being skipped as a bad example.
    """
    for name, feature in (dataset.features or {}).items():
        if isinstance(feature, (ImageFeature, Audio, VideoFeature)) and feature.decode:
            dataset = dataset.cast_column(name, dataclasses.replace(feature, decode=False))
        elif _is_frame_list(feature) and feature.feature.decode:
            frames = dataclasses.replace(feature.feature, decode=False)
            dataset = dataset.cast_column(name, dataclasses.replace(feature, feature=frames))
    return dataset


def encode_speaker_column(
    train: Dataset, evaluation: Dataset | None, speaker_column: str
) -> tuple[Dataset, Dataset | None, list[str]]:
    """
    The speakers of `speaker_column` as ids: names (strings) become a `ClassLabel` with the training split's names
    sorted, and the validation split is cast to the same names; a `ClassLabel` column keeps its own.

    Returns:
        `(train, evaluation, speaker_names)`, `speaker_names[i]` being the name of id `i` (for
        `config.id2speaker`).

    Raises:
        ValueError: for a streaming dataset, a missing column, a column of another type, missing values, or a
            validation speaker the training split does not have.
    """
    if not isinstance(train, Dataset):
        raise ValueError("--speaker_column needs a map-style dataset, to list its speakers before training.")
    if speaker_column not in train.column_names:
        raise ValueError(
            f"Speaker column {speaker_column!r} not found; the dataset has columns {train.column_names}."
        )
    feature = train.features[speaker_column]
    if isinstance(feature, ClassLabel):
        return train, evaluation, list(feature.names)
    if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
        raise ValueError(
            f"Speaker column {speaker_column!r} must hold speaker names (strings) or a ClassLabel, got {feature}."
        )
    names = []
    for split_name, split in (("training", train), ("validation", evaluation)):
        if split is None:
            continue
        values = split.unique(speaker_column)
        if None in values or "" in values:
            raise ValueError(
                f"Speaker column {speaker_column!r} has missing values in the {split_name} split; every example "
                "needs its speaker (filter those rows out first, e.g. `dataset.filter(lambda x: x[column])`)."
            )
        if split_name == "training":
            names = sorted(values)
        elif unknown := sorted(set(values) - set(names)):
            raise ValueError(
                f"The validation split has speakers the training split lacks: {unknown}; the model learns one "
                f"vector per training speaker ({names})."
            )
    label = ClassLabel(names=names)
    train = train.cast_column(speaker_column, label)
    evaluation = evaluation.cast_column(speaker_column, label) if evaluation is not None else None
    return train, evaluation, names


def speakers_as_ids(dataset: Dataset, speaker_column: str, speaker_names: list[str]) -> Dataset:
    """`dataset` with `speaker_column`'s names encoded as the ids of `speaker_names` (a model's `id2speaker`), for
    evaluating a trained model on data whose speakers it knows.

    Raises:
        ValueError: for a missing column, or a speaker the model does not know.
    """
    if speaker_column not in (dataset.column_names or []):
        raise ValueError(
            f"Speaker column {speaker_column!r} not found; the dataset has columns {dataset.column_names}."
        )
    unknown = sorted(set(dataset.unique(speaker_column)) - set(speaker_names))
    if unknown:
        raise ValueError(
            f"Speakers {unknown} of {speaker_column!r} are not the model's ({', '.join(speaker_names)})."
        )
    return dataset.cast_column(speaker_column, ClassLabel(names=list(speaker_names)))
