"""Carving a validation split out of a training set and capping sizes, for map-style and streaming data alike.

Validation rows are spread evenly through the data: row `i` is a validation row when
`floor((i + 1) * p / 100) > floor(i * p / 100)`, i.e. every (100 / p)-th row (every 20th for p = 5). The split
is deterministic without a seed, needs no dataset length (so streaming works the same way), and, unlike "the
last N %", samples every part of a dataset stored sorted by class, as the shared CIFAR-10 parquet is.
"""

from __future__ import annotations

from fractions import Fraction
from functools import partial

import numpy as np
from datasets import Dataset, IterableDataset


def _validation_rows(index: int | np.ndarray, fraction: Fraction) -> bool | np.ndarray:
    # Integer arithmetic on an exact fraction: no float rounding decides which rows move.
    numerator, denominator = fraction.numerator, fraction.denominator
    return (index + 1) * numerator // denominator > index * numerator // denominator


def _keep_row(example: dict, index: int, fraction: Fraction, validation: bool) -> bool:
    return bool(_validation_rows(index, fraction)) == validation


def split_train_validation(
    dataset: Dataset | IterableDataset,
    validation_split_percentage: float | None = 5,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 42,
) -> tuple[Dataset | IterableDataset, Dataset | IterableDataset | None]:
    """
    Splits `dataset` into train and validation parts (validation rows spread evenly, see the module doc).

    Args:
        dataset: A raw `Dataset` or `IterableDataset`.
        validation_split_percentage (`float`, *optional*, defaults to 5): Percentage of rows held out;
            0 or `None` holds out nothing.
        max_train_samples, max_eval_samples (`int`, *optional*): Caps, for quick runs. Map-style datasets
            keep a random subset (seeded by `seed`: sorted data stays mixed), streaming ones the first rows.
        seed (`int`, defaults to 42): Seed of those random subsets.

    Returns:
        `(train_dataset, eval_dataset)`, `eval_dataset` being `None` when nothing is held out.

    Raises:
        ValueError: for a percentage outside [0, 100), or a split leaving either part empty.

    Streaming datasets number their rows as each consumer sees them, so consume both parts the same way: a
    stream sharded across DataLoader workers or nodes (`split_dataset_by_node`) numbers rows per worker or node,
    and reading the validation part unsharded would then pick other rows than the training part left out. The
    example scripts read both without workers, through Accelerate's dispatching from one process.
    """
    if not validation_split_percentage:
        return _cap(dataset, max_train_samples, seed), None
    if not 0 < validation_split_percentage < 100:
        raise ValueError(
            f"validation_split_percentage must lie in [0, 100), got {validation_split_percentage}."
        )
    fraction = Fraction(str(validation_split_percentage)) / 100
    if isinstance(dataset, IterableDataset):
        train, evaluation = (
            dataset.filter(partial(_keep_row, fraction=fraction, validation=validation), with_indices=True)
            for validation in (False, True)
        )
    else:
        mask = _validation_rows(np.arange(len(dataset)), fraction)
        if mask.all() or not mask.any():
            raise ValueError(
                f"validation_split_percentage={validation_split_percentage} of {len(dataset)} examples "
                "leaves the train or the validation split empty."
            )
        train, evaluation = dataset.select(np.flatnonzero(~mask)), dataset.select(np.flatnonzero(mask))
    return _cap(train, max_train_samples, seed), _cap(evaluation, max_eval_samples, seed)


def _cap(dataset: Dataset | IterableDataset, max_samples: int | None, seed: int) -> Dataset | IterableDataset:
    if max_samples is None:
        return dataset
    if isinstance(dataset, IterableDataset):
        return dataset.take(max_samples)
    return dataset.shuffle(seed=seed).select(range(min(max_samples, len(dataset))))
