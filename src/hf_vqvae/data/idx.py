"""Reading IDX files, the format of MNIST and Fashion-MNIST (optionally gzip-compressed).

Debian's `dataset-fashion-mnist` package installs Fashion-MNIST under `/usr/share/datasets/fashion-mnist/`;
[`read_fashion_mnist`] reads it, e.g. as sprites for `make_moving_mnist`.
"""

from __future__ import annotations

import gzip
import os
import struct
from math import prod
from pathlib import Path

import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# IDX element type codes (third byte of the magic number) -> big-endian numpy dtypes.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
_FASHION_MNIST_PREFIXES = {"train": "train", "test": "t10k"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """
    Reads one IDX file: magic `00 00 <type> <ndim>`, then `ndim` big-endian uint32 sizes, then the data.

    Args:
        path (`str` or `os.PathLike`): The file, plain or gzip-compressed (detected from its first bytes).

    Returns:
        `np.ndarray` of the stored shape, in native byte order (uint8 images are (N, rows, cols)).

    Raises:
        ValueError: when the file is not IDX or is truncated.
    """
    with open(path, "rb") as file:
        data = file.read()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile) as error:
            raise ValueError(f"{path} is a truncated or corrupt gzip file: {error}") from error
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (magic number {data[:4].hex()}).")
    ndim, header = data[3], 4 + 4 * data[3]
    if len(data) < header:
        raise ValueError(
            f"{path} is truncated: its header announces {ndim} sizes but ends after {len(data)} bytes."
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[data[2]])
    if len(data) - header != prod(shape) * dtype.itemsize:
        raise ValueError(
            f"{path} holds {len(data) - header} data bytes, but its header announces shape {shape}."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_fashion_mnist(
    root: str | os.PathLike = FASHION_MNIST_DIR, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """
    Reads Fashion-MNIST from its original IDX files (`train-images-idx3-ubyte[.gz]`, `t10k-...`).

    Args:
        root (`str` or `os.PathLike`, defaults to `FASHION_MNIST_DIR`): Folder holding the files.
        split (`str`, defaults to `"train"`): `"train"` (60,000 images) or `"test"` (10,000).

    Returns:
        `tuple[np.ndarray, np.ndarray]`: images, uint8 (N, 28, 28), and labels, uint8 (N,) indexing
        `FASHION_MNIST_LABELS`.
    """
    if split not in _FASHION_MNIST_PREFIXES:
        raise ValueError(f"Fashion-MNIST has the splits {list(_FASHION_MNIST_PREFIXES)}, got {split!r}.")
    prefix = _FASHION_MNIST_PREFIXES[split]
    images, labels = (
        _find(Path(root), f"{prefix}-{kind}") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )
    return read_idx(images), read_idx(labels)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{root / stem}[.gz] not found; on Debian/Ubuntu `apt-get install dataset-fashion-mnist` installs it "
        f"under {FASHION_MNIST_DIR}."
    )
