"""examples/release_model.py: a trained VQ-VAE + prior folder becomes a hub-ready release whose weights load with
`from_pretrained` and the pipeline, whose card reports the metrics it measured, and whose prior can be stored in
bfloat16 without changing the dtype it loads in."""

import json
from pathlib import Path

import pytest
import safetensors
import torch
from conftest import EXAMPLES, load_script
from huggingface_hub import ModelCard
from transformers import pipeline

from hf_vqvae import VQPriorConfig, VQPriorModel, VQVAEConfig, VQVAEModel

NUM_SHAPE_KINDS = 4


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory) -> Path:
    """What train_prior.py leaves: a VQ-VAE at the root, the class-conditional prior in prior/, and the
    VQ-VAE's training history with two validations. Its last training used the PSNR loss."""
    folder = tmp_path_factory.mktemp("trained")
    torch.manual_seed(0)
    VQVAEModel(
        VQVAEConfig(
            hidden_channels=16,
            residual_channels=8,
            codebook_size=32,
            embedding_dim=8,
            reconstruction_loss_type="psnr",
        )
    ).save_pretrained(folder)
    prior_config = VQPriorConfig(
        codebook_size=32,
        code_shape=[8, 8],
        num_classes=NUM_SHAPE_KINDS,
        hidden_size=16,
        num_layers=1,
        num_heads=2,
    )
    VQPriorModel(prior_config).save_pretrained(folder / "prior")
    history = [
        {
            "step": step,
            "eval_psnr_uint8": psnr,
            "eval_codebook_perplexity": 20.0 + step,
            "eval_codebook_fraction_used": 0.9,
            "eval_num_restarts": step,
        }
        for step, psnr in [(5, 11.5), (10, 12.25)]
    ]
    (folder / "training_history.jsonl").write_text("\n".join(json.dumps(row) for row in history))
    return folder


def release_args(model_dir: Path, work: Path, **overrides: str) -> list[str]:
    """release_model.py arguments: `model_dir` released into `work/release`, on built-in shapes."""
    commands = work / "commands.sh"
    commands.write_text("python examples/train_vqvae.py --the-recipe\n")
    args = {
        "--model_dir": str(model_dir),
        "--release_dir": str(work / "release"),
        "--dataset_name": "builtin:shapes",
        "--builtin_num_examples": "40",
        "--label_column": "label",
        "--training_commands": str(commands),
    } | overrides
    return [item for pair in args.items() for item in pair]


@pytest.fixture(scope="module")
def released(trained_folder, tmp_path_factory) -> tuple[Path, dict]:
    """The release of `trained_folder` on 16 held-out built-in shapes, VQ-VAE stored in float16 and prior in
    bfloat16, its VQ-VAE config set back to the MSE loss."""
    work = tmp_path_factory.mktemp("release")
    notes = work / "notes.md"
    notes.write_text(
        "## Intended use and limitations\n\nShapes only.\n\n## Validation split\n\nEvery 20th row.\n"
    )
    extra = {
        "--builtin_num_examples": "320",
        "--dataset_id": "org/shapes",
        "--validation_split_percentage": "5",
        "--card_sections": str(notes),
        "--num_samples": "2",
        "--vqvae_storage_dtype": "float16",
        "--prior_storage_dtype": "bfloat16",
        "--config_overrides": "reconstruction_loss_type=mse",
    }
    load_script(EXAMPLES / "release_model.py").main(release_args(trained_folder, work, **extra))
    release_dir = work / "release"
    return release_dir, ModelCard.load(release_dir / "README.md")


def test_release_loads_with_from_pretrained_and_the_pipeline(released):
    release_dir, _ = released
    assert VQVAEModel.from_pretrained(release_dir).config.codebook_size == 32
    images = pipeline("vq-sample", model=str(release_dir))(num_samples=2, class_labels=[0, 3], seed=0)
    assert [image.size for image in images] == [(32, 32)] * 2
    # The release carries the pipeline's code for transformers without the package (test_remote_code.py).
    assert (
        "vq-sample-remote-code" in json.loads((release_dir / "config.json").read_text())["custom_pipelines"]
    )
    assert (release_dir / "vq_sample.py").is_file()


def test_config_overrides_change_the_released_config(released, trained_folder):
    release_dir, _ = released
    assert VQVAEModel.from_pretrained(trained_folder).config.reconstruction_loss_type == "psnr"
    assert VQVAEModel.from_pretrained(release_dir).config.reconstruction_loss_type == "mse"


@pytest.mark.parametrize(
    ("model_class", "subfolder", "dtype", "stored_as"),
    [(VQVAEModel, "", torch.float16, "F16"), (VQPriorModel, "prior", torch.bfloat16, "BF16")],
)
def test_stored_weights_load_as_float32_rounded_to_their_storage_dtype(
    released, trained_folder, model_class, subfolder, dtype, stored_as
):
    release_dir, _ = released
    with safetensors.safe_open(release_dir / subfolder / "model.safetensors", "pt") as weights:
        floating = {weights.get_slice(name).get_dtype() for name in weights.keys()} - {"I64", "BOOL"}
    assert floating == {stored_as}
    loaded = model_class.from_pretrained(release_dir / subfolder)
    original = model_class.from_pretrained(trained_folder / subfolder)
    assert loaded.dtype == torch.float32
    for (name, value), expected in zip(
        loaded.state_dict().items(), original.state_dict().values(), strict=True
    ):
        rounded = expected.to(dtype).to(expected.dtype) if expected.is_floating_point() else expected
        torch.testing.assert_close(value, rounded, rtol=0, atol=0, msg=name)


def test_card_reports_measured_metrics_sections_and_samples(released):
    release_dir, card = released
    results = card.data.eval_results
    by_metric = {result.metric_type: result.metric_value for result in results}
    assert {"psnr_uint8", "ssim", "codebook_perplexity", "prior_bits_per_code"} <= set(by_metric)
    assert 0 < by_metric["prior_bits_per_code"] < 10
    text = card.text
    assert "python examples/train_vqvae.py --the-recipe" in text
    assert "1 layer of width 16" in text
    assert "Shapes only." in text and "Every 20th row." in text
    assert "| 10 | 12.25 | 30 | 90.0% | 10 |" in text  # the collapse table, from the training history
    assert (release_dir / "samples" / "prior_sample_grid.png").is_file()
    assert "](samples/prior_sample_grid.png)" in text


def test_missing_training_history_fails_before_anything_is_written(trained_folder, tmp_path):
    model_dir = tmp_path / "prior_run_elsewhere"
    VQVAEModel.from_pretrained(trained_folder).save_pretrained(model_dir)
    VQPriorModel.from_pretrained(trained_folder / "prior").save_pretrained(model_dir / "prior")
    with pytest.raises(FileNotFoundError, match="training_history.jsonl"):
        load_script(EXAMPLES / "release_model.py").main(release_args(model_dir, tmp_path))
    assert not (tmp_path / "release").exists()


def test_release_without_training_history_keeps_the_given_collapse_section(trained_folder, tmp_path):
    model_dir = tmp_path / "run_folder_lost"
    VQVAEModel.from_pretrained(trained_folder).save_pretrained(model_dir)
    VQPriorModel.from_pretrained(trained_folder / "prior").save_pretrained(model_dir / "prior")
    notes = tmp_path / "notes.md"
    notes.write_text("## Avoiding codebook collapse\n\nThe table the first release measured.\n")
    extra = {"--card_sections": str(notes), "--num_samples": "1", "--without_training_history": None}
    argv = [arg for arg in release_args(model_dir, tmp_path, **extra) if arg is not None]
    load_script(EXAMPLES / "release_model.py").main(argv)
    text = ModelCard.load(tmp_path / "release" / "README.md").text
    assert "The table the first release measured." in text
    assert "Validation during training" not in text


def test_weights_rounded_for_storage_keep_their_dtype(trained_folder):
    prior = VQPriorModel.from_pretrained(trained_folder / "prior")
    original = {name: value.clone() for name, value in prior.state_dict().items()}
    load_script(EXAMPLES / "release_model.py").round_weights_to(prior, torch.bfloat16)
    assert prior.dtype == torch.float32
    for name, value in prior.state_dict().items():
        torch.testing.assert_close(value, original[name].to(torch.bfloat16).float(), rtol=0, atol=0, msg=name)
    assert any(not torch.equal(value, original[name]) for name, value in prior.state_dict().items())


def test_card_sections_without_a_title_are_rejected(trained_folder, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("Some text with no '## Title' above it.\n")
    with pytest.raises(ValueError, match="must start with a '## Title' line"):
        load_script(EXAMPLES / "release_model.py").main(
            release_args(trained_folder, tmp_path, **{"--card_sections": str(notes)})
        )


def test_conditional_prior_needs_the_label_column(trained_folder, tmp_path):
    with pytest.raises(ValueError, match="give --label_column"):
        load_script(EXAMPLES / "release_model.py").main(
            release_args(trained_folder, tmp_path, **{"--label_column": ""})
        )
