# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""What counts as an integer or a real number for the models' arguments (code grids, class labels, sample counts,
sampling temperatures) and the command lines' flags."""

import argparse
from numbers import Integral, Real

import torch


def is_int(value) -> bool:
    """An integer number, not a bool (Python counts True as 1)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A real number (int, float, numpy scalar), not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def is_integer_tensor(tensor: torch.Tensor) -> bool:
    """An integer dtype of any width, not bool, floating point or complex."""
    return not (tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool)


def positive_int(value: str) -> int:
    """An argparse type: an integer >= 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return number


def non_negative_int(value: str) -> int:
    """An argparse type: an integer >= 0."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return number


def split_percentage(value: str) -> float:
    """An argparse type: a percentage of the data to hold out, in [0, 100) (0 holds out nothing)."""
    number = float(value)
    if not 0 <= number < 100:
        raise argparse.ArgumentTypeError(f"must be a percentage in [0, 100), got {value}")
    return number


def fraction(value: str) -> float:
    """An argparse type: a fraction in [0, 1)."""
    number = float(value)
    if not 0 <= number < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {value}")
    return number


def non_negative_float(value: str) -> float:
    """An argparse type: a finite number >= 0."""
    number = float(value)
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {value}")
    return number


def positive_float(value: str) -> float:
    """An argparse type: a finite number > 0."""
    number = float(value)
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
    return number
