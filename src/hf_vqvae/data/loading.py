"""Loading a raw dataset from the Hub, a local folder, data files or a built-in generator.

The arguments are the HF example scripts' flags (`--dataset_name`, `--dataset_config_name`,
`--train_data_dir`, `--data_files`, `--streaming`), so training scripts pass them straight through.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from datasets import Dataset, IterableDataset, load_dataset

from .builtin import BUILTIN_PREFIX, load_builtin_dataset
from .folders import load_media_folder

# `datasets` packaged builder for each data-file extension.
BUILDER_BY_EXTENSION = {
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
}
# Compressed text data files (`train.jsonl.gz`) are read through fsspec's compression filesystems, as `datasets`
# does; Parquet and Arrow files compress internally and are not read from compressed files.
COMPRESSION_EXTENSIONS = {".bz2", ".gz", ".gzip", ".lz4", ".xz", ".zst", ".zstd"}
COMPRESSIBLE_EXTENSIONS = {".csv", ".json", ".jsonl"}


def load_raw_dataset(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_data_dir: str | os.PathLike | None = None,
    data_files: str | list[str] | dict[str, str | list[str]] | None = None,
    *,
    split: str = "train",
    streaming: bool = False,
    modality: str | None = None,
    cache_dir: str | None = None,
    builtin_options: dict[str, Any] | None = None,
    **load_kwargs,
) -> Dataset | IterableDataset:
    """
    Loads one split of a raw (undecoded, unpreprocessed) dataset. Give exactly one of `dataset_name`,
    `train_data_dir` or `data_files`.

    Args:
        dataset_name (`str`, *optional*): A Hub dataset (`"uoft-cs/cifar10"`), loaded with
            `datasets.load_dataset`, or a built-in offline one: `"builtin:shapes"`, `"builtin:tones"`,
            `"builtin:sprites"`, `"builtin:moving-mnist"` (see `builtin.py`).
        dataset_config_name (`str`, *optional*): The Hub dataset's configuration.
        train_data_dir (`str` or `os.PathLike`, *optional*): A local folder: `imagefolder` for images, a
            folder of audio / video files otherwise (labels from sub-folder names; see `folders.py`).
        data_files (`str`, `list[str]` or `dict`, *optional*): Parquet, Arrow, CSV or JSON files (glob
            patterns allowed; CSV and JSON may be compressed, `.jsonl.gz`), e.g. `"data/train-*.parquet"` or
            `{"train": ..., "validation": ...}`.
        split (`str`, defaults to `"train"`): The split to load.
        streaming (`bool`, defaults to `False`): Return an `IterableDataset` that reads lazily, for sets
            larger than memory or disk.
        modality (`str`, *optional*): `"image"`, `"audio"` or `"video"`; required with `train_data_dir`, to
            know which files to collect.
        cache_dir (`str`, *optional*): `datasets` cache folder.
        builtin_options (`dict`, *optional*): Keyword arguments for a built-in generator, e.g.
            `{"num_examples": 500, "seed": 1}`.
        load_kwargs: Passed on to `datasets.load_dataset` (e.g. `token`, `revision`).

    Returns:
        `datasets.Dataset`, or `datasets.IterableDataset` when `streaming=True`.
    """
    sources = {"dataset_name": dataset_name, "train_data_dir": train_data_dir, "data_files": data_files}
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        raise ValueError(
            f"Give exactly one of dataset_name, train_data_dir or data_files; got {given or 'none'}."
        )
    common = {"split": split, "streaming": streaming, "cache_dir": cache_dir, **load_kwargs}
    if dataset_name is not None and not dataset_name.startswith(BUILTIN_PREFIX):
        return _load_dataset(f"Dataset {dataset_name!r}", dataset_name, dataset_config_name, **common)
    if data_files is not None:
        builder = _builder_for(data_files)
        return _load_dataset(f"data_files {data_files}", builder, data_files=data_files, **common)
    if dataset_name is None and modality == "image":
        source = f"train_data_dir {str(train_data_dir)!r}"
        return _load_dataset(source, "imagefolder", data_dir=str(train_data_dir), **common)
    dataset = _generated_or_media_folder(dataset_name, train_data_dir, split, modality, builtin_options)
    return dataset.to_iterable_dataset() if streaming else dataset


def _generated_or_media_folder(
    dataset_name: str | None, train_data_dir, split: str, modality: str | None, builtin_options: dict | None
) -> Dataset:
    """The datasets this package makes itself: a built-in generated one, or a folder of audio or video files."""
    if dataset_name is not None:
        if split != "train":
            raise ValueError(f"Built-in datasets have one split, 'train', got split={split!r}.")
        return load_builtin_dataset(dataset_name, **(builtin_options or {}))
    if modality not in ("audio", "video"):
        raise ValueError(
            "train_data_dir needs modality='image', 'audio' or 'video' to know which files to read."
        )
    return load_media_folder(train_data_dir, modality, split)


def _load_dataset(source: str, *args, split: str, **kwargs) -> Dataset | IterableDataset:
    """`datasets.load_dataset`, with its error for a split without a single row made plain."""
    try:
        return load_dataset(*args, split=split, **kwargs)
    except ValueError as error:
        # What `datasets` says for an empty split: 'Instruction "train" corresponds to no data!'
        if "corresponds to no data" not in str(error):
            raise
        raise ValueError(f"{source}: split {split!r} has no examples (the dataset is empty).") from error


def _builder_for(data_files: str | list[str] | dict[str, str | list[str]]) -> str:
    """The packaged builder (`"parquet"`, `"csv"`, ...) for the extension shared by all `data_files`."""
    if isinstance(data_files, dict):
        files = [
            file for value in data_files.values() for file in ([value] if isinstance(value, str) else value)
        ]
    else:
        files = [data_files] if isinstance(data_files, str) else list(data_files)
    extensions = {_format_extension(file) for file in files}
    builders = {BUILDER_BY_EXTENSION.get(extension) for extension in extensions}
    if len(builders) != 1 or None in builders:
        raise ValueError(
            f"data_files must all have one of the extensions {sorted(BUILDER_BY_EXTENSION)} (CSV and JSON "
            f"optionally compressed: {sorted(COMPRESSION_EXTENSIONS)}); got {sorted(extensions)}."
        )
    return builders.pop()


def _format_extension(file: str) -> str:
    """The extension naming a data file's format, behind a compression extension on CSV and JSON (`.jsonl.gz` ->
    `.jsonl`; `.parquet.gz` stays itself, and is refused)."""
    path = Path(file)
    compression = path.suffix.lower() if path.suffix.lower() in COMPRESSION_EXTENSIONS else ""
    extension = Path(path.stem).suffix.lower() if compression else path.suffix.lower()
    return extension if not compression or extension in COMPRESSIBLE_EXTENSIONS else extension + compression
