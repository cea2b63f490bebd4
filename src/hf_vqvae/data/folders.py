"""Folders of audio or video files as datasets, labelled by sub-folder, like `imagefolder`.

`datasets`' `audiofolder` needs torchcodec even to build the dataset, so audio and video folders are
listed here: one row per file, the media column holding `{"bytes": None, "path": ...}` exactly as
`Audio(decode=False)` / `Video(decode=False)` would, so the same decoders read them as any other data.
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import ClassLabel, Dataset, Features

from ..models.vqvae.modalities import AUDIO, VIDEO
from .columns import DEFAULT_DATA_COLUMNS, ENCODED_MEDIA

AUDIO_EXTENSIONS = AUDIO.file_extensions
VIDEO_EXTENSIONS = VIDEO.file_extensions
MEDIA_EXTENSIONS = {"audio": AUDIO_EXTENSIONS, "video": VIDEO_EXTENSIONS}


def load_media_folder(data_dir: str | os.PathLike, modality: str, split: str = "train") -> Dataset:
    """
    Lists the audio or video files under `data_dir` (recursively) as a `Dataset`.

    Args:
        data_dir (`str` or `os.PathLike`): The folder. If it has a sub-folder named `split` (e.g. `train/`,
            `validation/`), only that sub-folder is read, as `imagefolder` does.
        modality (`str`): `"audio"` or `"video"`; selects the file extensions (`MEDIA_EXTENSIONS`).
        split (`str`, defaults to `"train"`): Which split sub-folder to read.

    Returns:
        `Dataset` with the column `"audio"` / `"video"` (`{"bytes": None, "path": str}`, sorted by path) and,
        when every file lies in a sub-folder, `"label"`: a `ClassLabel` named after the first-level folders.

    Raises:
        ValueError: when the folder (or split) does not exist or holds no file of the modality.
    """
    root = _split_root(Path(data_dir), split)
    extensions = MEDIA_EXTENSIONS[modality]
    files = sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix.lower() in extensions
        # Hidden files and folders (macOS `._*` resource forks, `.cache/`) are skipped, as imagefolder does.
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
    if not files:
        raise ValueError(f"No {modality} files ({', '.join(extensions)}) found under {root}.")
    column = DEFAULT_DATA_COLUMNS[modality]
    data = {column: [{"bytes": None, "path": str(path)} for path in files]}
    features = {column: ENCODED_MEDIA}
    folders = [path.relative_to(root).parts[0] if path.parent != root else None for path in files]
    if None not in folders:
        label_ids = {name: index for index, name in enumerate(sorted(set(folders)))}
        data["label"] = [label_ids[folder] for folder in folders]
        features["label"] = ClassLabel(names=list(label_ids))
    return Dataset.from_dict(data, features=Features(features))


def _split_root(data_dir: Path, split: str) -> Path:
    if not data_dir.is_dir():
        raise ValueError(f"train_data_dir {str(data_dir)!r} is not a directory.")
    if (data_dir / split).is_dir():
        return data_dir / split
    if split != "train":
        raise ValueError(f"No {split!r} sub-folder in {str(data_dir)!r} to read the {split!r} split from.")
    return data_dir
