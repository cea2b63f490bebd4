"""Skipping bad examples without letting them silently take over a run.

Decoders and preprocessors raise [`BadExampleError`] for an example that cannot be decoded or has the wrong
shape. The dataset transform catches exactly that error (programming errors still crash), hands the example
to a [`BadExampleTracker`], and emits `None` in its place; the collate function drops the `None`s. The tracker
logs the first few offenders and raises [`TooManyBadExamplesError`] once bad examples exceed a set fraction
of those seen, so a corrupt shard or a wrong column fails loudly instead of training on the few survivors.

The tracker counts what its own process decodes: in the main process with `num_workers=0`, or separately
in each DataLoader worker (the fraction then applies per worker, and the error reaches the main process
through the DataLoader).
"""

from __future__ import annotations

from transformers.utils import logging

logger = logging.get_logger(__name__)


class BadExampleError(ValueError):
    """An example that cannot be decoded or does not have the expected shape; it is skipped, not fatal."""


class TooManyBadExamplesError(RuntimeError):
    """More bad examples than the tracker tolerates: the data (or the column chosen) is likely wrong."""


class BadExampleTracker:
    """
    Counts good and bad examples and fails once bad ones exceed `max_bad_fraction` of those seen.

    Args:
        max_bad_fraction (`float`, defaults to 0.05):
            Largest tolerated fraction of bad examples among all examples seen so far.
        min_examples (`int`, defaults to 100):
            The fraction is enforced only after this many examples, so an early bad example cannot fail a run.
        max_reported (`int`, defaults to 5):
            How many bad examples are logged individually (and quoted in the final error).
    """

    def __init__(self, max_bad_fraction: float = 0.05, min_examples: int = 100, max_reported: int = 5):
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must lie in [0, 1], got {max_bad_fraction}.")
        self.max_bad_fraction = max_bad_fraction
        self.min_examples = min_examples
        self.max_reported = max_reported
        self.num_seen = 0
        self.num_bad = 0
        self.first_bad: list[tuple[str, str]] = []  # (example id, error message)

    @property
    def bad_fraction(self) -> float:
        return self.num_bad / self.num_seen if self.num_seen else 0.0

    def record_good(self) -> None:
        self.num_seen += 1

    def record_bad(self, example_id: str, error: Exception) -> None:
        """Counts a skipped example, logs it if among the first few, and raises if the fraction is exceeded.

        Raises:
            TooManyBadExamplesError: once `num_seen >= min_examples` and `bad_fraction > max_bad_fraction`.
        """
        self.num_seen += 1
        self.num_bad += 1
        if len(self.first_bad) < self.max_reported:
            self.first_bad.append((example_id, str(error)))
            logger.warning(f"Skipping bad example {example_id}: {error}")
        if self.num_seen >= self.min_examples and self.bad_fraction > self.max_bad_fraction:
            raise TooManyBadExamplesError(
                f"{self.summary()} This exceeds max_bad_fraction={self.max_bad_fraction}; check the data and "
                "the column used, or raise the tolerance."
            )

    def summary(self) -> str:
        """One line: how many examples were skipped, and the first few with their errors."""
        first = "; ".join(f"{example_id}: {message}" for example_id, message in self.first_bad)
        text = f"Skipped {self.num_bad} of {self.num_seen} examples ({self.bad_fraction:.1%})."
        return f"{text} First bad examples: {first}." if first else text
