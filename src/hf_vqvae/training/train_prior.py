r"""Train an autoregressive prior (transformer or gated PixelCNN) over the codes of a trained, frozen VQ-VAE, with
Accelerate: the same script on one CPU, one GPU, many GPUs or many nodes.

    python -m hf_vqvae.training.train_prior --vqvae_name_or_path out/shapes --dataset_name builtin:shapes \
        --label_column label --prior_type transformer --output_dir out/shapes --max_train_steps 500
    accelerate launch --num_processes 2 -m hf_vqvae.training.train_prior ...

(`examples/train_prior.py` runs the same `main`, with the same flags.) The VQ-VAE stays in eval mode (its codebook
never moves); it encodes the dataset once, and the codes are cached as a `datasets` dataset that later runs reuse.
The output folder is a complete pipeline folder: the VQ-VAE at its root (written there unless it is already the
VQ-VAE's own folder) and the prior in `prior/`, so `pipeline("vq-sample", model=output_dir)` samples from it. Every
`prior-checkpoint-{step}` has the same layout (a prefix of its own, so that the VQ-VAE's `checkpoint-{step}` folders
in its folder are neither pruned nor resumed).
"""

import logging
import math
import time
from pathlib import Path

import torch

from ..data import collate_examples
from ..evaluation.reconstruction import compare_with_code_entropy, evaluate_prior
from ..models.prior.modeling_prior import VQPriorModel
from ..models.vqvae.modeling_vqvae import VQVAEModel
from ..pipelines.exporting import save_outputs
from ..pipelines.hub import push_output_dir
from ..pipelines.remote_pipeline import add_pipeline_code
from ..pipelines.vq_sample import VQSamplePipeline, per_class_labels
from .arguments import (
    build_accelerator,
    build_lr_scheduler,
    check_full_batch,
    launch_command,
    load_raw_splits,
    start_trackers,
)
from .augmentation import augmentation_generator, check_augmentation_args
from .checkpointing import (
    load_checkpoint,
    log_final_fingerprint,
    register_pretrained_hooks,
    resolve_resume_checkpoint,
)
from .history import TrainingHistory, last_evaluation
from .loop import TrainingRun, run_training_loop
from .modelcard import write_model_card
from .plotting import plot_training_curves
from .prior_arguments import parse_args
from .prior_building import build_prior, prior_class_names
from .prior_codes import encoded_splits, load_frozen_vqvae, training_codes, training_examples
from .resumable_data import training_loader

CHECKPOINT_PREFIX = "prior-checkpoint"
logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv, description=__doc__)
    output_dir = Path(args.output_dir)
    resume_checkpoint = resolve_resume_checkpoint(args.resume_from_checkpoint, output_dir, CHECKPOINT_PREFIX)
    accelerator = build_accelerator(args)

    vqvae = load_frozen_vqvae(args.vqvae_name_or_path).to(accelerator.device)
    check_augmentation_args(args, vqvae.config)
    raw_train, raw_eval, label_names = load_raw_splits(args, vqvae.config.modality)
    label_names = prior_class_names(args, raw_train, raw_eval, label_names)
    prior = build_prior(args, vqvae, label_names)  # before encoding, so a bad config fails fast
    codes = encoded_splits(args, vqvae, raw_train, raw_eval, accelerator)
    train_loader, eval_loader = build_loaders(args, accelerator, vqvae, raw_train, codes)

    optimizer = torch.optim.AdamW(
        prior.parameters(), lr=args.learning_rate, weight_decay=args.adam_weight_decay
    )
    prior, optimizer, train_loader = accelerator.prepare(prior, optimizer, train_loader)
    scheduler, max_train_steps = build_lr_scheduler(args, accelerator, optimizer, train_loader)
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)
    register_pretrained_hooks(accelerator, {"prior": prior}, extra_save=vqvae.save_pretrained)
    start_trackers(accelerator, args, "train_prior")
    global_step = load_checkpoint(accelerator, resume_checkpoint, CHECKPOINT_PREFIX, max_train_steps)
    history = TrainingHistory(
        output_dir / "prior_training_history.jsonl", accelerator, resume_step=global_step
    )

    start = time.perf_counter()
    run = TrainingRun(
        args,
        accelerator,
        prior,
        optimizer,
        scheduler,
        train_loader,
        history,
        global_step,
        max_train_steps,
        CHECKPOINT_PREFIX,
    )
    train(run, vqvae, eval_loader)
    finish(
        args, accelerator, prior, vqvae, codes, eval_loader, history, label_names, time.perf_counter() - start
    )
    log_final_fingerprint(accelerator, prior)
    accelerator.end_training()


def build_loaders(args, accelerator, vqvae: VQVAEModel, raw_train, codes):
    """The training loader (cached code grids, or inputs to encode with --online_augmentation) and the validation
    loader of cached codes (`None` without a validation split)."""
    train_examples = training_examples(args, vqvae, raw_train, codes)
    check_full_batch(len(train_examples) // accelerator.num_processes, args)
    effective_batch = args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info(
        "processes: %d | batch per process: %d | effective batch size: %d | train examples: %d%s",
        accelerator.num_processes,
        args.train_batch_size,
        effective_batch,
        len(train_examples),
        " (encoded afresh at every step)" if args.online_augmentation else "",
    )
    train_loader = training_loader(
        train_examples,
        batch_size=args.train_batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=collate_examples if args.online_augmentation else None,
    )
    eval_loader = (
        training_loader(codes["validation"], batch_size=args.eval_batch_size)
        if "validation" in codes
        else None
    )
    return train_loader, eval_loader


def train(run: TrainingRun, vqvae: VQVAEModel, eval_loader) -> None:
    """The prior's part of the loop: the codes of a batch (cached, or encoded afresh with online augmentation),
    their NLL, and validation of the NLL on the validation codes."""
    args, accelerator, prior = run.args, run.accelerator, run.model
    prior.train()

    def loss_and_logs(batch: dict, batch_number: int):
        generator = (
            augmentation_generator(args.seed, accelerator.process_index, batch_number)
            if args.online_augmentation
            else None
        )
        codes, augment_labels = training_codes(args, vqvae, batch, generator)
        loss = prior(codes, class_labels=batch.get("class_labels"), augment_labels=augment_labels).loss
        return loss, lambda: {"loss": loss.item(), "bits_per_code": loss.item() / math.log(2)}

    def validate_at(step: int) -> None:
        validate(accelerator, prior, vqvae, eval_loader, run.history, step)

    run_training_loop(
        run,
        "train_prior",
        loss_and_logs,
        validate_at if eval_loader is not None else None,
        {"bits_per_code": ".3f"},
    )


def validate(accelerator, prior, vqvae, eval_loader, history, global_step: int) -> dict[str, float]:
    """Prior NLL over the whole validation set, in bits per code and per input dimension."""
    dims_per_example = vqvae.config.in_channels * math.prod(vqvae.config.sample_size)
    batches = ({"codes": b["codes"].long(), "class_labels": b.get("class_labels")} for b in eval_loader)
    results = evaluate_prior(accelerator.unwrap_model(prior), batches, dims_per_example, accelerator)
    history.log_evaluation(results, step=global_step)
    logger.info("step %d validation: %s", global_step, {k: round(v, 4) for k, v in results.items()})
    return results


@torch.no_grad()
def save_prior_samples(
    prior: VQPriorModel, vqvae: VQVAEModel, label_names, num_samples: int, output_dir: Path, seed: int
) -> list[Path]:
    """Samples drawn through the pipeline and written as the modality's files: one row per class for a
    conditional prior."""
    num_classes = len(label_names or [])
    per_class = max(1, num_samples // num_classes) if num_classes else num_samples
    outputs = VQSamplePipeline(vqvae, prior)(
        num_samples=per_class * max(num_classes, 1),
        class_labels=per_class_labels(num_classes, per_class),
        generator=torch.Generator(device=prior.device).manual_seed(seed),
    )
    return save_outputs(outputs, vqvae.config, output_dir, prefix="prior_sample", rows=num_classes or None)


def finish(
    args, accelerator, prior, vqvae, codes, eval_loader, history, label_names, training_seconds
) -> None:
    """Final validation, then the pipeline folder: VQ-VAE at the root, prior in prior/, samples, curves, card."""
    output_dir = Path(args.output_dir)
    results = history.evaluation_at(history.last_step)  # the loop's validation of these weights, if any
    if results is None:
        results = (
            validate(accelerator, prior, vqvae, eval_loader, history, history.last_step)
            if eval_loader is not None
            else {}
        )
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    unwrapped = accelerator.unwrap_model(prior).eval()
    if "validation" in codes:
        results |= compare_with_code_entropy(
            results["prior_bits_per_code"], codes["validation"][:]["codes"].long(), vqvae.config.codebook_size
        )
    if Path(args.vqvae_name_or_path).resolve() != output_dir.resolve():
        vqvae.save_pretrained(output_dir)
    unwrapped.save_pretrained(output_dir / "prior")
    add_pipeline_code(VQSamplePipeline, output_dir)
    samples = save_prior_samples(
        unwrapped, vqvae, label_names, args.num_validation_samples, output_dir / "samples", args.seed
    )
    samples.append(
        plot_training_curves(history.records, output_dir / "samples" / "prior_training_curves.png")
    )
    metrics = {**last_evaluation(Path(args.vqvae_name_or_path) / "training_history.jsonl"), **results}
    metrics.pop("num_eval_examples", None)
    write_model_card(
        output_dir,
        model_id=args.hub_model_id or output_dir.name,
        config=vqvae.config,
        prior_config=unwrapped.config,
        metrics=metrics,
        training_command=launch_command(accelerator),
        datasets=[args.dataset_name] if args.dataset_name else [],
        sample_files=[str(Path(p).relative_to(output_dir)) for p in samples],
        training_time=f"prior: {training_seconds / 60:.1f} minutes on {accelerator.num_processes} process(es)",
    )
    if args.push_to_hub:
        push_output_dir(output_dir, args.hub_model_id or output_dir.name, args.hub_token, args.logging_dir)


if __name__ == "__main__":
    main()
