"""Whole-set evaluation: whole audio recordings scored over their own samples only."""

import io

import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F
from datasets import Dataset, Features, Value

from hf_vqvae import VQVAEConfig, VQVAEModel
from hf_vqvae.evaluation.metrics import snr_db
from hf_vqvae.evaluation.reconstruction import evaluate_recordings, evaluate_split
from hf_vqvae.models.eval_mode import eval_mode


def tiny_audio_model() -> VQVAEModel:
    torch.manual_seed(0)
    config = VQVAEConfig(
        modality="audio",
        hidden_channels=8,
        residual_channels=4,
        codebook_size=16,
        embedding_dim=4,
        downsample_factors=4,
        sample_size=64,
        sampling_rate=8000,
    )
    return VQVAEModel(config).eval()


def test_evaluate_recordings_scores_each_whole_recording_without_its_padding():
    model = tiny_audio_model()
    recordings = [torch.rand(1, length) - 0.5 for length in (1500, 1203)]  # 1203 is not a multiple of 4
    results = evaluate_recordings(model, recordings)
    expected = []
    with torch.no_grad():
        for waveform in recordings:
            padded = F.pad(waveform, (0, -waveform.shape[-1] % 4))[None]
            reconstruction = model(padded).reconstruction.clamp(-1, 1)[..., : waveform.shape[-1]]
            expected.append(snr_db(reconstruction, waveform[None]).item())
    assert results["snr_db"] == pytest.approx(sum(expected) / 2, abs=1e-5)
    assert results["num_eval_examples"] == 2 and results["log_mel_distance"] > 0
    assert 0 < results["codebook_fraction_used"] <= 1


def test_evaluate_recordings_rejects_image_models():
    with pytest.raises(ValueError, match="scores audio models, got modality='image'"):
        evaluate_recordings(VQVAEModel(VQVAEConfig(hidden_channels=8, residual_channels=4)), [])


def test_eval_mode_gives_every_submodule_back_its_own_mode():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    model.train()
    model[0].eval()  # a part that training keeps frozen
    with pytest.raises(RuntimeError, match="inside"), eval_mode(model):
        assert not any(module.training for module in model.modules())
        raise RuntimeError("inside")
    assert [module.training for module in model.modules()] == [True, False, True]


def test_one_undecodable_recording_is_skipped_not_fatal():
    def wav(samples: np.ndarray) -> dict:
        buffer = io.BytesIO()
        soundfile.write(buffer, samples, 8000, format="WAV")
        return {"bytes": buffer.getvalue(), "path": None}

    rows = [wav(0.3 * np.sin(np.arange(400) / (3 + i)).astype(np.float32)) for i in range(20)]
    rows[10] = {"bytes": b"RIFF-corrupt", "path": None}  # 1 of 20: within the default 5% tolerance
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}})
    raw = Dataset.from_dict({"audio": rows}, features=features)
    assert evaluate_split(tiny_audio_model(), raw, "audio")["num_eval_examples"] == 19
