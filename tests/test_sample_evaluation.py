"""The sample scorer: harmonicity, within-class diversity, the classifier, and examples/evaluate_samples.py end to end
on a tiny pipeline folder."""

import json
import math

import pytest
import torch
from conftest import load_script
from test_training_scripts import (  # noqa: F401  (trained_pipeline_dir is a fixture)
    EXAMPLES,
    SMALL_SHAPES,
    trained_pipeline_dir,
)

from hf_vqvae.evaluation.sample_classifier import SampleClassifier, classify, train_classifier
from hf_vqvae.evaluation.samples import harmonicity, within_class_diversity
from hf_vqvae.models.prior.modeling_prior import VQPriorModel

EVALUATE_SAMPLES = EXAMPLES / "evaluate_samples.py"


def test_harmonicity_tells_a_voiced_tone_from_noise():
    rate = 8000
    time = torch.arange(rate) / rate
    tone = torch.sin(2 * math.pi * 150 * time) + 0.5 * torch.sin(2 * math.pi * 300 * time)
    noise = torch.randn(rate, generator=torch.Generator().manual_seed(0))
    scores = harmonicity(torch.stack([tone, noise])[:, None], rate, normalization="overlap")
    assert scores[0] > 0.95
    assert scores[1] < 0.3


def test_frame_normalised_harmonicity_is_the_overlap_share_for_a_tone():
    # r(lag) / r(0) of a steady tone is about (frame - lag) / frame at its period (200 Hz: lag 40 of 256).
    rate = 8000
    tone = torch.sin(2 * math.pi * 200 * torch.arange(rate) / rate)
    score = harmonicity(tone[None, None], rate)[0].item()
    assert score == pytest.approx((256 - 40) / 256, abs=0.02)
    with pytest.raises(ValueError, match="normalization must be"):
        harmonicity(tone[None, None], rate, normalization="peak")


def test_harmonicity_ignores_quiet_frames():
    rate = 8000
    time = torch.arange(rate) / rate
    tone = torch.sin(2 * math.pi * 200 * time)
    quiet_noise = 1e-3 * torch.randn(rate, generator=torch.Generator().manual_seed(0))
    # A voiced half and a near-silent noisy half: only the loud frames count.
    take = torch.cat([tone[: rate // 2], quiet_noise[rate // 2 :]])
    assert harmonicity(take[None, None], rate, normalization="overlap")[0] > 0.95


def test_within_class_diversity_is_the_mean_pairwise_distance_per_class():
    features = torch.tensor([[0.0, 0.0], [3.0, 4.0], [10.0, 10.0], [10.0, 12.0], [10.0, 14.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    # class 0: one pair at distance 5; class 1: distances 2, 4, 2 -> mean 8/3.
    assert within_class_diversity(features, labels) == pytest.approx((5 + 8 / 3) / 2)


@pytest.mark.parametrize(("modality", "shape"), [("image", (3, 8, 8)), ("audio", (1, 512))])
def test_the_classifier_learns_a_separable_task_and_round_trips(modality, shape, tmp_path):
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat(32)
    inputs = torch.randn(64, *shape, generator=generator) * 0.1
    if modality == "image":
        inputs[labels == 1, 0] += 0.8  # class 1 is redder
    else:
        time = torch.arange(shape[-1]) / 8000
        inputs[labels == 1, 0] += 0.8 * torch.sin(2 * math.pi * 1000 * time)  # class 1 has a 1 kHz tone
    classifier = SampleClassifier(
        modality, shape[0], 2, sampling_rate=8000 if modality == "audio" else None, width=8
    )
    train_classifier(classifier, inputs, labels, epochs=8, batch_size=16, learning_rate=1e-2)
    predictions, features = classify(classifier, inputs)
    assert (predictions == labels).float().mean() > 0.9
    assert features.shape == (64, 32)
    classifier.save(tmp_path, validation_accuracy=0.5)
    loaded, accuracy = SampleClassifier.load(tmp_path)
    assert accuracy == 0.5
    assert torch.equal(classify(loaded, inputs)[0], predictions)


def test_the_classifier_refuses_video():
    with pytest.raises(ValueError, match="images or audio"):
        SampleClassifier("video", 3, 10)


def test_evaluate_samples_writes_the_sweep(trained_pipeline_dir, tmp_path):  # noqa: F811
    output_dir, classifier_dir = tmp_path / "sweep", tmp_path / "classifier"
    argv = [
        "--model_name_or_path",
        str(trained_pipeline_dir),
        *SMALL_SHAPES,
        "--label_column",
        "label",
        "--validation_split_percentage",
        "20",
        "--classifier_dir",
        str(classifier_dir),
        "--output_dir",
        str(output_dir),
        "--guidance_scales",
        "1",
        "3",
        "--samples_per_class",
        "2",
        "--classifier_epochs",
        "1",
    ]
    load_script(EVALUATE_SAMPLES).main(argv)
    summary = json.loads((output_dir / "sweep.json").read_text())
    num_classes = VQPriorModel.from_pretrained(trained_pipeline_dir, subfolder="prior").config.num_classes
    assert [row["guidance_scale"] for row in summary["sweep"]] == [1.0, 3.0]
    for row in summary["sweep"]:
        assert 0 <= row["fidelity"] <= 1
        assert len(row["per_class_fidelity"]) == num_classes
        assert row["fidelity"] == pytest.approx(sum(row["per_class_fidelity"]) / num_classes)
        assert row["diversity_ratio"] == pytest.approx(row["diversity"] / summary["real"]["diversity"])
    assert 0 <= summary["real"]["classifier_accuracy"] <= 1
    per_class = summary["real"]["reconstruction_accuracy_per_class"]
    assert set(per_class) <= {str(label) for label in range(num_classes)}
    assert min(per_class.values()) <= summary["real"]["reconstruction_accuracy"] <= max(per_class.values())
    assert (output_dir / "sweep.md").read_text().startswith("| guidance scale | class fidelity")
    assert (output_dir / "guidance_3" / "sample_grid.png").is_file()
    # The classifier is kept and reused: a second run reports the same validation accuracy without retraining.
    assert (classifier_dir / "classifier.safetensors").is_file()
    load_script(EVALUATE_SAMPLES).main([*argv, "--guidance_scales", "1"])
    again = json.loads((output_dir / "sweep.json").read_text())
    assert again["real"]["classifier_accuracy"] == summary["real"]["classifier_accuracy"]


def test_evaluate_samples_needs_a_label_column(trained_pipeline_dir, tmp_path, capsys):  # noqa: F811
    with pytest.raises(SystemExit):
        load_script(EVALUATE_SAMPLES).main(
            [
                "--model_name_or_path",
                str(trained_pipeline_dir),
                *SMALL_SHAPES,
                "--classifier_dir",
                str(tmp_path),
                "--output_dir",
                str(tmp_path),
            ]
        )
    assert "--label_column is required" in capsys.readouterr().err
