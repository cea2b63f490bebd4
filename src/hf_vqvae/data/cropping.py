"""Where to cut a window out of a longer axis: at random for training, centred for evaluation.

Shared by image crops, audio windows and video clips. Random offsets are drawn with `torch.randint`, from
`generator` when one is given and otherwise from torch's global RNG. Accelerate's `save_state` /
`load_state` checkpoint the global RNG, so with the default (no generator) and `num_workers=0` a resumed run
draws exactly the crops the interrupted run would have drawn. With DataLoader workers, each worker draws
from its own RNG seeded by the DataLoader, which is reproducible from the start but not across a resume.
"""

from __future__ import annotations

import torch


def window_start(total: int, size: int, random: bool, generator: torch.Generator | None = None) -> int:
    """
    Start of a window of `size` elements inside an axis of `total` elements (`size <= total`).

    Args:
        total (`int`): Length of the axis.
        size (`int`): Length of the window.
        random (`bool`): Draw the start uniformly from every valid position; otherwise centre the window.
        generator (`torch.Generator`, *optional*): RNG for the random start (torch's global RNG if `None`).

    Returns:
        `int`: the first index of the window.
    """
    if size > total:
        raise ValueError(f"A window of {size} does not fit in an axis of {total}.")
    if random:
        return int(torch.randint(0, total - size + 1, (1,), generator=generator))
    return (total - size) // 2
