"""Video prediction (`evaluation.prediction`, `examples/evaluate_prediction.py`): the prior continues the codes of a
clip's first frames, and the scores compare the frames after them with the truth and with copying the last given
frame."""

import json

import pytest
import torch
from conftest import EXAMPLES, load_script
from test_pipeline import tiny_prior, tiny_vqvae

from hf_vqvae.data import make_moving_digits
from hf_vqvae.evaluation.prediction import predict_clips, prediction_scores, prompt_code_slices


@pytest.fixture(scope="module")
def models():
    vqvae = tiny_vqvae("video")  # 4 frames, time downsampling 2: code grid (2, 4, 4)
    return vqvae, tiny_prior(vqvae.config.code_shape).eval()


def clips(count: int = 3) -> torch.Tensor:
    return torch.rand(count, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_predictions_keep_the_codes_of_the_given_frames_and_sample_the_rest(models):
    vqvae, prior = models
    true_clips = clips()
    predictions, reconstructions = predict_clips(
        vqvae, prior, true_clips, 2, torch.Generator().manual_seed(0), batch_size=2
    )
    assert predictions.shape == reconstructions.shape == true_clips.shape
    with torch.no_grad():
        true_codes = vqvae.encode(true_clips).codes
        # Batches of 2 here against 3 there: the same up to float rounding.
        torch.testing.assert_close(reconstructions, vqvae.decode(true_codes).clamp(-1, 1), rtol=0, atol=1e-5)
    # The first batch is the prior's continuation of the first code slice (frames 1-2), decoded.
    sampled = prior.generate(2, prompt_codes=true_codes[:2, :1], generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampled[:, :1], true_codes[:2, :1])
    with torch.no_grad():
        torch.testing.assert_close(predictions[:2], vqvae.decode(sampled).clamp(-1, 1), rtol=0, atol=0)


def test_scores_reward_the_truth_and_the_baseline_copies_the_last_given_frame():
    true_clips = clips()
    perfect = prediction_scores(true_clips, true_clips, true_clips, prompt_frames=2)
    assert perfect.psnr == perfect.reconstruction_psnr == 100.0 and perfect.ssim == pytest.approx(1.0)
    still = true_clips[:, 1:2].expand_as(true_clips).clone()  # every frame is frame 2: copying it is exact
    scores = prediction_scores(still, true_clips, still, prompt_frames=2)
    assert scores.baseline_psnr == 100.0 and scores.baseline_ssim == pytest.approx(1.0)
    assert scores.psnr < 20 and scores.psnr_gain == scores.psnr - scores.baseline_psnr


@pytest.mark.parametrize(
    ("prompt_frames", "message"),
    [(1, "multiple of the time downsampling 2"), (4, r"in \[2, 2\]"), (0, "prompt_frames")],
)
def test_prompt_frames_must_end_on_a_code_slice_and_leave_frames_to_predict(models, prompt_frames, message):
    with pytest.raises(ValueError, match=message):
        prompt_code_slices(models[0], prompt_frames)


def test_prediction_needs_a_video_model():
    with pytest.raises(ValueError, match="needs a video VQ-VAE, got a image model"):
        prompt_code_slices(tiny_vqvae("image"), 2)


def test_the_evaluation_script_writes_scores_tables_and_gifs(models, tmp_path):
    vqvae, prior = models
    vqvae.save_pretrained(tmp_path / "model")
    prior.save_pretrained(tmp_path / "model" / "prior")
    data = tmp_path / "clips.parquet"
    make_moving_digits(num_examples=3, num_frames=4, canvas_size=16).to_parquet(data)
    output = tmp_path / "out"
    load_script(EXAMPLES / "evaluate_prediction.py").main(
        [
            "--model_name_or_path", str(tmp_path / "model"), "--validation_data_files", str(data),
            "--output_dir", str(output), "--num_clips", "2", "--prompt_frames", "2",
            "--temperatures", "1", "0.5", "--num_gifs", "1",
        ]
    )  # fmt: skip
    summary = json.loads((output / "prediction.json").read_text())
    assert [row["temperature"] for row in summary["rows"]] == [1.0, 0.5] and summary["num_clips"] == 2
    assert "| 0.5 |" in (output / "prediction.md").read_text()
    gifs = sorted(path.name for path in output.rglob("*.gif"))
    assert gifs == ["given_predicted_true_0.gif"] * 2
