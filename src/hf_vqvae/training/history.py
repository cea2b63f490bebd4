"""The scalars a training run logged, kept as JSON lines in the output folder so a resumed run continues the same
curves (and the final plot shows the whole run)."""

import json
from pathlib import Path

from accelerate import Accelerator


class TrainingHistory:
    """Logs scalars to Accelerate's trackers and appends them to `path`.

    On resume, records written after the checkpoint's step (by the interrupted run) are dropped, so the history
    reads as one uninterrupted run.
    """

    def __init__(self, path: str | Path, accelerator: Accelerator, resume_step: int = 0):
        self.path = Path(path)
        self.accelerator = accelerator
        self.records: list[dict] = []
        self.last_step = resume_step  # kept on every process; only the main one keeps the records
        self._last_evaluation: tuple[int, dict[str, float]] | None = None  # (step, results), on every process
        if resume_step:
            self.records = [record for record in read_history(self.path) if record["step"] <= resume_step]
        if accelerator.is_main_process:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("".join(json.dumps(record) + "\n" for record in self.records))

    def log(self, values: dict[str, float], step: int) -> None:
        self.accelerator.log(values, step=step)
        self.last_step = step
        if self.accelerator.is_main_process:
            record = {"step": step, **values}
            self.records.append(record)
            with self.path.open("a") as history_file:
                history_file.write(json.dumps(record) + "\n")

    def log_evaluation(self, results: dict[str, float], step: int) -> None:
        """Log validation results as `eval_*` scalars, and remember them for [`evaluation_at`]."""
        self.log({f"eval_{name}": value for name, value in results.items()}, step=step)
        self._last_evaluation = (step, dict(results))

    def evaluation_at(self, step: int) -> dict[str, float] | None:
        """The results [`log_evaluation`] logged at `step` in this process's run, if it was the last evaluation:
        the final validation reuses them instead of evaluating the same weights twice."""
        if self._last_evaluation is None or self._last_evaluation[0] != step:
            return None
        return dict(self._last_evaluation[1])


def read_history(path: str | Path) -> list[dict]:
    """The records of a history file (one JSON object per line); empty when there is no such file."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last_evaluation(path: str | Path) -> dict[str, float]:
    """The last validation a history file holds, without the `eval_` prefix (empty when it holds none)."""
    evaluations = [record for record in read_history(path) if any(key.startswith("eval_") for key in record)]
    if not evaluations:
        return {}
    return {
        key.removeprefix("eval_"): value for key, value in evaluations[-1].items() if key.startswith("eval_")
    }
