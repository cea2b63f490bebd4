"""Training curves as one PNG, for model cards and quick looks at a run."""

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path

# The object-oriented API draws on an Agg canvas without touching pyplot's global backend or figure registry,
# so plotting from a training script or a notebook leaves the caller's matplotlib state alone.
from matplotlib.figure import Figure

# Bookkeeping entries of a log history that are axes or counters, not curves.
NON_CURVE_KEYS = ("step", "epoch")


def plot_training_curves(
    log_history: Sequence[Mapping[str, object]],
    path: str | Path,
    keys: Sequence[str] | None = None,
    num_columns: int = 3,
) -> Path:
    """
    Plot every logged scalar against the training step, one panel per scalar, and save the figure as a PNG.

    Args:
        log_history (`Sequence[Mapping[str, object]]`):
            Logged entries, each with a `"step"` and any scalars, e.g. `{"step": 100, "loss": 0.31,
            "perplexity": 402.0}` (the shape of `Trainer.state.log_history`). Entries may log different keys;
            non-numeric values are skipped.
        path (`str` or `Path`): where to write the PNG; parent folders are created.
        keys (`Sequence[str]`, *optional*): the scalars to plot, in order; defaults to every numeric key other
            than `"step"` and `"epoch"`, in order of first appearance.
        num_columns (`int`, defaults to 3): panels per row.

    Returns:
        `Path`: the written file.
    """
    curves = _collect_curves(log_history, keys)
    missing = [name for name in keys or () if name not in curves]
    if missing or not curves:
        raise ValueError(f"log_history holds no numeric values for {missing or 'any scalar'}.")
    num_rows = math.ceil(len(curves) / num_columns)
    figure = Figure(figsize=(4 * min(num_columns, len(curves)), 3 * num_rows), layout="constrained")
    for index, (name, (steps, values)) in enumerate(curves.items(), start=1):
        axes = figure.add_subplot(num_rows, min(num_columns, len(curves)), index)
        axes.plot(steps, values, marker="." if len(steps) < 50 else None)
        axes.set_title(name)
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path


def _collect_curves(
    log_history: Sequence[Mapping[str, object]], keys: Sequence[str] | None
) -> dict[str, tuple[list[float], list[float]]]:
    """`{name: (steps, values)}` for each plotted scalar, from the entries that log it."""
    curves: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in keys or ()}
    for entry in log_history:
        if "step" not in entry:
            raise ValueError(f"Every log_history entry needs a 'step'; got {dict(entry)}.")
        for name, value in entry.items():
            # bool is a Real too, but a flag is not a curve.
            if name in NON_CURVE_KEYS or not isinstance(value, Real) or isinstance(value, bool):
                continue
            if keys is None:
                curves.setdefault(name, ([], []))
            if name in curves:
                curves[name][0].append(float(entry["step"]))
                curves[name][1].append(float(value))
    return {name: curve for name, curve in curves.items() if curve[0]}
