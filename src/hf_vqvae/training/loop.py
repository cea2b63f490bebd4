"""The optimisation loop both training scripts run: accumulate, check the loss, step, log, validate, checkpoint,
resumable at any step. What differs between them (how a batch becomes a loss, what is logged and validated) comes
in as functions."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from .checkpointing import DEFAULT_PREFIX, check_finite_loss, save_checkpoint
from .history import TrainingHistory
from .resumable_data import resumable_batches

# A batch and its place in the run (the batch's number in the epoch) -> the loss, and a function giving the scalars
# to log; it is called on the last micro-batch of each optimizer step only, so that reading them back from the
# device (`.item()`) does not stall every micro-batch of gradient accumulation.
LossFunction = Callable[[dict, int], tuple[torch.Tensor, Callable[[], dict[str, float]]]]


@dataclass
class TrainingRun:
    """The prepared objects of one run and the step it stands at."""

    args: Any  # the script's flags: output_dir, validation_steps, checkpointing_steps, max_grad_norm, ...
    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train_loader: Any
    history: TrainingHistory
    global_step: int
    max_train_steps: int
    checkpoint_prefix: str = DEFAULT_PREFIX


def run_training_loop(
    run: TrainingRun,
    description: str,
    loss_and_logs: LossFunction,
    validate: Callable[[int], Any] | None,
    progress_keys: dict[str, str],
) -> None:
    """Train `run.model` until `run.max_train_steps`, from `run.global_step`.

    Args:
        description: the progress bar's label.
        loss_and_logs: the loss of a batch, and a function giving the scalars to log at the step it completes.
        validate: called with the step every `--validation_steps` steps (`None` without validation data).
        progress_keys: logged scalars shown beside the progress bar, by name -> format (e.g. `{"loss": ".4f"}`).
    """
    args, accelerator, model = run.args, run.accelerator, run.model
    progress = tqdm(
        total=run.max_train_steps,
        initial=run.global_step,
        desc=description,
        disable=not accelerator.is_local_main_process,
    )
    for epoch, batch_number, batch in resumable_batches(
        run.train_loader, accelerator, run.global_step, args.gradient_accumulation_steps
    ):
        if run.global_step >= run.max_train_steps:
            break
        with accelerator.accumulate(model):
            loss, logs = loss_and_logs(batch, batch_number)
            check_finite_loss(accelerator, loss, run.global_step + 1, args.output_dir, run.checkpoint_prefix)
            accelerator.backward(loss)
            if accelerator.sync_gradients and args.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
        if not accelerator.sync_gradients:
            continue
        run.global_step += 1
        progress.update(1)
        logs = {**logs(), "lr": run.scheduler.get_last_lr()[0], "epoch": epoch}
        progress.set_postfix({name: format(logs[name], spec) for name, spec in progress_keys.items()})
        run.history.log(logs, step=run.global_step)
        if validate is not None and run.global_step % args.validation_steps == 0:
            validate(run.global_step)
        if run.global_step % args.checkpointing_steps == 0:
            save_checkpoint(
                accelerator,
                args.output_dir,
                run.global_step,
                args.checkpoints_total_limit,
                run.checkpoint_prefix,
            )
    progress.close()
