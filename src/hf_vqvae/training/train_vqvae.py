"""Train or fine-tune a VQ-VAE with Accelerate on a `datasets` dataset: the same script on one CPU, one GPU, many
GPUs or many nodes.

    python -m hf_vqvae.training.train_vqvae --dataset_name builtin:shapes --output_dir out/shapes --max_train_steps 200
    accelerate launch --num_processes 2 -m hf_vqvae.training.train_vqvae --data_files train.parquet --image_column img
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m hf_vqvae.training.train_vqvae ...

`examples/train_vqvae.py` runs the same `main`, with the same flags.

The output folder is hub-ready (config.json, model.safetensors, README.md model card, samples); checkpoints go to
`output_dir/checkpoint-{step}` and each one also loads with `VQVAEModel.from_pretrained`.
"""

import argparse
import logging
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from ..data import (
    SPEAKER_KEY,
    BadExampleTracker,
    build_preprocessor,
    collate_examples,
    encode_speaker_column,
    prepare_dataset,
)
from ..data.seeding import ExampleSeededDataset
from ..evaluation.reconstruction import evaluate_reconstruction
from ..models.number_checks import positive_int
from ..models.vqvae.configuration_vqvae import VQVAEConfig
from ..models.vqvae.modeling_vqvae import VQVAEModel
from ..pipelines.exporting import save_reconstructions
from ..pipelines.hub import push_output_dir
from .arguments import (
    add_data_args,
    add_training_args,
    build_accelerator,
    build_lr_scheduler,
    check_full_batch,
    data_column,
    launch_command,
    load_raw_splits,
    reporting_missing_source,
    start_trackers,
)
from .checkpointing import (
    load_checkpoint,
    log_final_fingerprint,
    register_pretrained_hooks,
    resolve_resume_checkpoint,
)
from .config_overrides import (
    apply_config_overrides,
    from_pretrained_with_overrides,
    parse_config_overrides,
)
from .history import TrainingHistory
from .loop import TrainingRun, run_training_loop
from .modelcard import write_model_card
from .plotting import plot_training_curves
from .resumable_data import training_loader

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model_name_or_path", help="Fine-tune this VQ-VAE (local folder or Hub id).")
    model.add_argument(
        "--config_name", help="Start a new model from this config (folder, JSON file or Hub id)."
    )
    model.add_argument("--modality", choices=["image", "audio", "video"], help="New model's modality.")
    model.add_argument(
        "--config_overrides",
        help='Config fields, e.g. "hidden_channels=64,codebook_size=256"; with --model_name_or_path, only fields '
        'that keep the weights\' shapes (e.g. "reconstruction_loss_type=psnr").',
    )
    model.add_argument(
        "--train_decoder_only",
        action="store_true",
        help="Fine-tune only the decoder of --model_name_or_path: the encoder and codebook stay frozen, so every "
        "input keeps its codes and a prior trained on them stays valid.",
    )
    add_data_args(parser)
    parser.add_argument(
        "--speaker_column",
        help="Column naming each example's speaker (names or a ClassLabel): the decoder learns one vector per "
        "speaker (config.num_speakers, id2speaker), so that the codes can leave the voice to it. A model being "
        "fine-tuned without speakers gets them, starting from zero vectors.",
    )
    parser.add_argument(
        "--shuffle_buffer_size",
        type=positive_int,
        default=10_000,
        help="With --streaming: training examples held in the shuffle buffer (datasets' IterableDataset.shuffle); "
        "a stored dataset is often sorted by class.",
    )
    add_training_args(parser)
    args = parser.parse_args(argv)
    if args.streaming and not args.max_train_steps:
        parser.error("--streaming datasets have no length: give --max_train_steps.")
    if args.model_name_or_path and (args.config_name or args.modality):
        parser.error(
            "--model_name_or_path fine-tunes an existing model; --config_name/--modality only apply to a new one."
        )
    if args.speaker_column and args.streaming:
        parser.error(
            "--speaker_column needs a map-style dataset (it lists the speakers first): drop --streaming."
        )
    if args.train_decoder_only and not args.model_name_or_path:
        parser.error("--train_decoder_only fine-tunes a trained model's decoder: give --model_name_or_path.")
    return args


def build_model(args: argparse.Namespace) -> VQVAEModel:
    """The model to train: a pretrained one to fine-tune, or a new one from a config plus overrides."""
    if args.model_name_or_path:
        with reporting_missing_source("--model_name_or_path", args.model_name_or_path):
            model = from_pretrained_with_overrides(VQVAEModel, args.model_name_or_path, args.config_overrides)
        if args.train_decoder_only:
            model.encoder.requires_grad_(False)
            model.quantizer.requires_grad_(False)
        return model
    overrides = parse_config_overrides(args.config_overrides)
    if args.modality:
        overrides["modality"] = args.modality
    base = VQVAEConfig
    if args.config_name:
        with reporting_missing_source("--config_name", args.config_name):
            base = VQVAEConfig.from_pretrained(args.config_name)
    return VQVAEModel(apply_config_overrides(base, overrides))


def with_speakers(model: VQVAEModel, speaker_names: list[str]) -> None:
    """Give the model the data's speakers (zero vectors, for a new model as for a fine-tuned one), or check that it
    has them already, in the same order."""
    if not model.config.num_speakers:
        model.add_speakers(speaker_names)
        logger.info("The decoder learns %d speakers: %s", len(speaker_names), speaker_names)
    else:
        model.config.check_speakers(speaker_names)


def check_speaker_adversary(args: argparse.Namespace, config: VQVAEConfig) -> None:
    """A speaker adversary trains the encoder against a speaker classifier: it needs speakers and an encoder that
    trains."""
    weight = config.speaker_adversary_weight
    if weight and not args.speaker_column:
        raise ValueError(
            f"speaker_adversary_weight={weight} trains the encoder against a speaker classifier, which needs each "
            "example's speaker: give --speaker_column."
        )
    if weight and args.train_decoder_only:
        raise ValueError(
            f"speaker_adversary_weight={weight} trains the encoder, which --train_decoder_only freezes: add "
            '--config_overrides "speaker_adversary_weight=0" (its weights are then dropped), or train the whole model.'
        )


def set_train_mode(accelerator: Accelerator, model, decoder_only: bool) -> None:
    """Training mode, except a frozen encoder and quantizer stay in eval mode (no EMA updates, no restarts)."""
    model.train()
    if decoder_only:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.encoder.eval()
        unwrapped.quantizer.eval()


def load_splits(args, modality: str):
    """The raw train and validation splits, the class names and the speaker names (`None` without them)."""
    raw_train, raw_eval, label_names = load_raw_splits(args, modality)
    speaker_names = None
    if args.speaker_column:
        raw_train, raw_eval, speaker_names = encode_speaker_column(raw_train, raw_eval, args.speaker_column)
    return raw_train, raw_eval, label_names, speaker_names


def build_dataloaders(args, config: VQVAEConfig, accelerator: Accelerator, raw_train, raw_eval):
    """Train/validation splits -> lazy per-modality preprocessing -> DataLoaders."""
    column = data_column(args, config.modality)
    tracker = BadExampleTracker(max_bad_fraction=args.max_bad_fraction)
    # Map-style data draws its random crops per example from (seed, epoch, index), which a resumed run repeats.
    generator = None if args.streaming else torch.Generator()
    train = prepare_dataset(
        raw_train,
        build_preprocessor(config, train=True, generator=generator),
        column,
        args.label_column,
        tracker=tracker,
        speaker_column=args.speaker_column,
    )
    if args.streaming:
        # Reshuffled at every epoch by `set_epoch`, from the seed: a resumed run draws the same order.
        train = train.shuffle(seed=args.seed, buffer_size=args.shuffle_buffer_size)
    else:
        check_full_batch(len(train) // accelerator.num_processes, args)
        train = ExampleSeededDataset(train, generator, args.seed)
    train_loader = training_loader(
        train,
        batch_size=args.train_batch_size,
        shuffle=not args.streaming,
        collate_fn=collate_examples,
        drop_last=not args.streaming,
    )
    eval_loader = None
    if raw_eval is not None:
        evaluation = prepare_dataset(
            raw_eval,
            build_preprocessor(config, train=False),
            column,
            args.label_column,
            tracker=tracker,
            speaker_column=args.speaker_column,
        )
        eval_loader = training_loader(
            evaluation, batch_size=args.eval_batch_size, collate_fn=collate_examples
        )
    return train_loader, eval_loader


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    resume_checkpoint = resolve_resume_checkpoint(args.resume_from_checkpoint, output_dir)
    accelerator = build_accelerator(args)

    model = build_model(args)
    check_speaker_adversary(args, model.config)
    raw_train, raw_eval, _, speaker_names = load_splits(args, model.config.modality)
    if speaker_names is not None:
        with_speakers(model, speaker_names)
    train_loader, eval_loader = build_dataloaders(args, model.config, accelerator, raw_train, raw_eval)
    effective_batch = args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info(
        "processes: %d | batch per process: %d | effective batch size: %d | mixed precision: %s",
        accelerator.num_processes,
        args.train_batch_size,
        effective_batch,
        accelerator.mixed_precision,
    )

    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=args.learning_rate,
        weight_decay=args.adam_weight_decay,
    )
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    scheduler, max_train_steps = build_lr_scheduler(args, accelerator, optimizer, train_loader)
    if eval_loader is not None:
        eval_loader = accelerator.prepare(eval_loader)
    register_pretrained_hooks(accelerator, {"": model})
    start_trackers(accelerator, args, "train_vqvae")
    global_step = load_checkpoint(accelerator, resume_checkpoint, max_train_steps=max_train_steps)
    history = TrainingHistory(output_dir / "training_history.jsonl", accelerator, resume_step=global_step)

    start = time.perf_counter()
    run = TrainingRun(
        args, accelerator, model, optimizer, scheduler, train_loader, history, global_step, max_train_steps
    )
    train(run, eval_loader)
    finish(args, accelerator, model, eval_loader, history, time.perf_counter() - start)
    log_final_fingerprint(accelerator, model)
    accelerator.end_training()


def train(run: TrainingRun, eval_loader) -> None:
    """The VQ-VAE's part of the loop: a batch's loss with its terms, validation of reconstructions."""
    model, accelerator = run.model, run.accelerator
    input_name = accelerator.unwrap_model(model).main_input_name
    set_train_mode(accelerator, model, run.args.train_decoder_only)

    def loss_and_logs(batch: dict, batch_number: int):
        outputs = model(batch[input_name], speaker_ids=batch.get(SPEAKER_KEY))

        def logs() -> dict[str, float]:
            return {
                "loss": outputs.loss.item(),
                "reconstruction_loss": outputs.reconstruction_loss.item(),
                "commitment_loss": outputs.commitment_loss.item(),
                **{
                    name: value.item()
                    for name, value in (
                        ("spectral_loss", outputs.spectral_loss),
                        ("speaker_adversary_loss", outputs.speaker_adversary_loss),
                    )
                    if value is not None
                },
                "batch_perplexity": outputs.perplexity.item(),
            }

        return outputs.loss, logs

    def validate_at(step: int) -> None:
        validate(accelerator, model, eval_loader, run.history, step)

    run_training_loop(
        run,
        "train_vqvae",
        loss_and_logs,
        validate_at if eval_loader is not None else None,
        {"loss": ".4f", "batch_perplexity": ".0f"},
    )


def validate(accelerator, model, eval_loader, history, global_step: int) -> dict[str, float]:
    """Whole-set reconstruction metrics and codebook usage, plus the restarts so far, logged at `global_step`."""
    unwrapped = accelerator.unwrap_model(model)
    results = evaluate_reconstruction(unwrapped, eval_loader, accelerator)
    results["num_restarts"] = int(unwrapped.quantizer.num_restarts)
    history.log_evaluation(results, step=global_step)
    logger.info("step %d validation: %s", global_step, {k: round(v, 4) for k, v in results.items()})
    return results


def finish(args, accelerator, model, eval_loader, history, training_seconds: float) -> None:
    """Final validation, then the hub-ready folder: weights, reconstructions, curves, model card."""
    output_dir = Path(args.output_dir)
    results = history.evaluation_at(history.last_step)  # the loop's validation of these weights, if any
    if results is None:
        results = (
            validate(accelerator, model, eval_loader, history, history.last_step)
            if eval_loader is not None
            else {}
        )
    unwrapped = accelerator.unwrap_model(model)
    # On every process: a prepared streaming loader hands out batches from the main process.
    batch = next(iter(eval_loader)) if eval_loader is not None else None
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    unwrapped.save_pretrained(output_dir)
    sample_files = []
    if batch is not None:
        inputs = batch[unwrapped.main_input_name][: args.num_validation_samples]
        speaker_ids = batch[SPEAKER_KEY][: args.num_validation_samples] if SPEAKER_KEY in batch else None
        with torch.no_grad():
            reconstruction = unwrapped.eval()(inputs, speaker_ids=speaker_ids).reconstruction
        sample_files = save_reconstructions(inputs, reconstruction, unwrapped.config, output_dir / "samples")
    sample_files.append(plot_training_curves(history.records, output_dir / "samples" / "training_curves.png"))
    card_metrics = {k: v for k, v in results.items() if k not in ("num_eval_examples",)}
    write_model_card(
        output_dir,
        model_id=args.hub_model_id or output_dir.name,
        config=unwrapped.config,
        metrics=card_metrics,
        training_command=launch_command(accelerator),
        datasets=[args.dataset_name] if args.dataset_name else [],
        sample_files=[str(Path(p).relative_to(output_dir)) for p in sample_files],
        training_time=f"{training_seconds / 60:.1f} minutes on {accelerator.num_processes} process(es)",
    )
    if args.push_to_hub:
        push_output_dir(output_dir, args.hub_model_id or output_dir.name, args.hub_token, args.logging_dir)


if __name__ == "__main__":
    main()
