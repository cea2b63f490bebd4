"""Model cards: metadata and body written from the configs and metrics, and read back by huggingface_hub."""

import pytest
from huggingface_hub import ModelCard

from hf_vqvae import VQPriorConfig, VQVAEConfig
from hf_vqvae.training.modelcard import write_model_card

COMMAND = "accelerate launch examples/train_vqvae.py --dataset_name uoft-cs/cifar10 --max_train_steps 1000"


def write_image_card(tmp_path, **overrides):
    (tmp_path / "samples").mkdir(exist_ok=True)
    for name in ("reconstructions.png", "samples.gif"):
        (tmp_path / "samples" / name).write_bytes(b"fake")
    fields = dict(
        model_id="org/vqvae-cifar10",
        config=VQVAEConfig(),
        prior_config=VQPriorConfig(prior_type="pixelcnn", num_classes=10),
        metrics={
            "psnr_uint8": 26.3412,
            "codebook_perplexity": 487.25,
            "codebook_fraction_used": 0.998046875,
            "prior_bits_per_code": 7.5,
        },
        training_command=COMMAND,
        datasets=["uoft-cs/cifar10"],
        eval_split="test",
        sample_files=["samples/reconstructions.png", "samples/samples.gif"],
        training_time="2 h 10 min",
        hardware="1x NVIDIA H100",
    )
    return write_model_card(tmp_path, **{**fields, **overrides})


def test_written_card_loads_back_with_its_metadata(tmp_path):
    written = write_image_card(tmp_path)
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.to_dict() == written.data.to_dict()
    assert card.data.library_name == "hf_vqvae"
    assert card.data.license == "apache-2.0"
    assert card.data.pipeline_tag == "unconditional-image-generation"
    assert card.data.tags == ["vq-vae", "hf_vqvae", "image"]
    assert card.data.datasets == ["uoft-cs/cifar10"]
    assert card.data.model_name == "vqvae-cifar10"


def test_model_index_has_one_result_per_metric(tmp_path):
    write_image_card(tmp_path)
    results = {r.metric_type: r for r in ModelCard.load(tmp_path / "README.md").data.eval_results}
    assert {key: r.metric_value for key, r in results.items()} == {
        "psnr_uint8": 26.3412,
        "codebook_perplexity": 487.25,
        "codebook_fraction_used": 0.998046875,
        "prior_bits_per_code": 7.5,
    }
    assert results["psnr_uint8"].task_type == "image-to-image"
    assert results["prior_bits_per_code"].task_type == "unconditional-image-generation"
    assert {(r.dataset_type, r.dataset_split) for r in results.values()} == {("uoft-cs/cifar10", "test")}


def test_body_describes_model_training_metrics_and_samples(tmp_path):
    text = write_image_card(tmp_path).text
    assert "| Code grid | 8 × 8 codes |" in text
    assert "K = 512 codes of dimension D = 64" in text
    assert "| Compression vs 8-bit input | 42.7× |" in text  # 3 * 32 * 32 * 8 bits / (64 codes * 9 bits)
    assert 'VQVAEModel.from_pretrained("org/vqvae-cifar10")' in text
    assert 'pipeline("vq-sample", model="org/vqvae-cifar10")' in text
    assert f"```bash\n{COMMAND}\n```" in text
    assert "- Training time: 2 h 10 min\n- Hardware: 1x NVIDIA H100" in text
    assert "| PSNR, 8-bit (dB) | 26.34 |" in text
    assert "| Codebook perplexity | 487.2 |" in text
    assert "| Codes used | 99.8% |" in text  # 511 of 512, as a percentage
    assert "![reconstructions](samples/reconstructions.png)" in text
    assert "[samples/samples.gif](samples/samples.gif)" in text
    assert "## Intended use and limitations" in text


def test_metric_values_keep_their_trailing_zeros(tmp_path):
    text = write_image_card(tmp_path, metrics={"psnr_uint8": 26.000457, "prior_bits_per_code": 7.5}).text
    assert "| PSNR, 8-bit (dB) | 26.00 |" in text  # not "26", which hides how close to 26 dB it is
    assert "| Prior bits/code | 7.500 |" in text


def test_counts_are_shown_as_integers(tmp_path):
    text = write_image_card(tmp_path, metrics={"num_restarts": 549.0}).text
    assert "| Dead-code restarts | 549 | Codes re-seeded from encoder outputs, counted over all" in text


def test_audio_card_reports_bitrate_and_has_no_pipeline_tag(tmp_path):
    config = VQVAEConfig(modality="audio", sampling_rate=16000)
    card = write_model_card(
        tmp_path, model_id="org/vqvae-speech", config=config, metrics={"snr_db": 12.5}, training_command="x"
    )
    assert card.data.pipeline_tag is None
    assert card.data.eval_results is None  # no dataset to attach a model-index entry to
    assert "| Codes per second | 250 |" in card.text  # 16000 Hz / 64
    assert "| Bitrate | 2.25 kbit/s |" in card.text  # 250 codes/s * 9 bits
    assert "| Compression vs 16-bit input | 113.8× |" in card.text
    assert "| SNR (dB) | 12.50 |" in card.text
    assert "pipeline(" not in card.text  # no prior, so nothing to sample with


def test_extra_sections_and_custom_limitations(tmp_path):
    text = write_image_card(
        tmp_path, limitations="Only CIFAR-10.", extra_sections={"Citation": "@article{x}"}
    ).text
    assert "## Intended use and limitations\n\nOnly CIFAR-10." in text
    assert text.rstrip().endswith("## Citation\n\n@article{x}")


def test_bad_inputs_are_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        write_image_card(tmp_path, sample_files=["missing.png"])
    with pytest.raises(ValueError, match="prior models"):
        write_image_card(tmp_path, prior_config=VQPriorConfig(codebook_size=256))
