"""Decoders conditioned on the speaker (a global label): the config, the model for every modality, training with
`--speaker_column`, whole-recording reconstruction and voice conversion (Python and `hf-vqvae convert`), the
pipeline's `speaker_ids`, and the multi-resolution STFT loss."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from conftest import EXAMPLES, load_script, tiny_config, tiny_inputs
from datasets import Dataset
from safetensors.torch import save_file
from transformers import pipeline

from hf_vqvae import VQPriorConfig, VQPriorModel, VQVAEConfig, VQVAEModel
from hf_vqvae.cli import main as cli_main
from hf_vqvae.data import encode_speaker_column, make_tones
from hf_vqvae.models.vqvae.spectral_loss import multi_resolution_stft_loss
from hf_vqvae.pipelines.recordings import convert_voice, reconstruct_recording

SPEAKERS = ["ann", "bob", "cy"]
MODALITIES = ["image", "audio", "video"]


def speaker_model(modality: str = "audio", **overrides) -> VQVAEModel:
    """A tiny model with three speakers whose vectors are random (not the zero init), so that they matter."""
    torch.manual_seed(0)
    model = VQVAEModel(tiny_config(modality, id2speaker=dict(enumerate(SPEAKERS)), **overrides)).eval()
    with torch.no_grad():
        model.decoder.speaker_embedding.weight.normal_(0, 1)
    return model


# ---- config


def test_id2speaker_sets_num_speakers_and_survives_a_save(tmp_path):
    config = tiny_config("audio", id2speaker={0: "ann", 1: "bob"})
    assert config.num_speakers == 2 and config.speaker2id == {"ann": 0, "bob": 1}
    config.save_pretrained(tmp_path)
    loaded = VQVAEConfig.from_pretrained(tmp_path)  # JSON keys are strings; they come back as ints
    assert loaded.id2speaker == {0: "ann", 1: "bob"} and loaded.num_speakers == 2


def test_num_speakers_alone_names_them():
    assert tiny_config("image", num_speakers=2).id2speaker == {0: "speaker_0", 1: "speaker_1"}


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"num_speakers": 3, "id2speaker": {0: "a", 1: "b"}}, "name the speaker ids 0..2"),
        ({"id2speaker": {0: "a", 1: "a"}}, "each speaker once"),
        ({"num_speakers": -1}, "num_speakers must be an integer >= 0"),
        ({"spectral_loss_weight": 0.1, "modality": "image"}, "audio loss"),
        ({"spectral_loss_weight": -1.0}, "spectral_loss_weight must be a number >= 0"),
        ({"speaker_adversary_weight": -0.1}, "speaker_adversary_weight must be a number >= 0"),
    ],
)
def test_bad_speaker_and_spectral_fields_are_refused(fields, message):
    modality = fields.pop("modality", "audio")
    with pytest.raises(ValueError, match=message):
        tiny_config(modality, **fields)


# ---- model


@pytest.mark.parametrize("modality", MODALITIES)
def test_the_speaker_changes_the_decoding_and_names_equal_ids(modality):
    model = speaker_model(modality)
    inputs = tiny_inputs(modality)[:2]
    with torch.no_grad():
        codes = model.encode(inputs).codes
        by_id = model.decode(codes, speaker_ids=[0, 2])
        by_name = model.decode(codes, speaker_ids=["ann", "cy"])
        other = model.decode(codes, speaker_ids=1)
        forward = model(inputs, speaker_ids=torch.tensor([0, 2])).reconstruction
    assert torch.equal(by_id, by_name)
    assert torch.allclose(forward, by_id, atol=1e-5)  # forward decodes the straight-through latents
    assert not torch.allclose(by_id, other)


@pytest.mark.parametrize("modality", MODALITIES)
def test_without_speaker_ids_the_decoder_speaks_with_the_mean_speaker(modality):
    model = speaker_model(modality)
    with torch.no_grad():
        codes = model.encode(tiny_inputs(modality)[:2]).codes
        mean = model.decoder.speaker_embedding.weight.mean(dim=0, keepdim=True)
        model.decoder.speaker_embedding.weight.copy_(mean.expand(3, -1))
        assert torch.allclose(model.decode(codes), model.decode(codes, speaker_ids=0), atol=1e-6)


@pytest.mark.parametrize("modality", MODALITIES)
def test_speaker_vectors_are_trained(modality):
    model = speaker_model(modality).train()
    model(tiny_inputs(modality), speaker_ids=0).loss.backward()
    grad = model.decoder.speaker_embedding.weight.grad
    assert grad[0].abs().sum() > 0 and grad[1:].abs().sum() == 0


def test_a_model_with_speakers_saves_and_loads(tmp_path):
    model = speaker_model()
    model.save_pretrained(tmp_path)
    loaded = VQVAEModel.from_pretrained(tmp_path).eval()
    codes = model.encode(tiny_inputs("audio")).codes
    assert loaded.config.id2speaker == dict(enumerate(SPEAKERS))
    assert torch.equal(loaded.decode(codes, speaker_ids="bob"), model.decode(codes, speaker_ids="bob"))


@pytest.mark.parametrize("modality", MODALITIES)
def test_models_without_speakers_keep_their_weights_and_outputs(modality):
    model = VQVAEModel(tiny_config(modality)).eval()
    assert not any("speaker" in name for name in model.state_dict())
    assert model.config.num_speakers == 0 and model.config.id2speaker is None


def test_add_speakers_changes_nothing_until_trained():
    model = VQVAEModel(tiny_config("audio")).eval()
    inputs = tiny_inputs("audio")
    before = model(inputs).reconstruction
    model.add_speakers(SPEAKERS)
    assert model.config.id2speaker == dict(enumerate(SPEAKERS))
    assert torch.equal(model(inputs, speaker_ids="cy").reconstruction, before)
    with pytest.raises(ValueError, match="already has speakers"):
        model.add_speakers(SPEAKERS)


@pytest.mark.parametrize(
    "speaker_ids, error, message",
    [
        ("dan", ValueError, r"Unknown speaker 'dan'; this model's speakers are 0='ann', 1='bob', 2='cy'"),
        (3, ValueError, "Speaker id 3 is out of range"),
        (torch.tensor([0, 5, 1, 1]), ValueError, r"must lie in \[0, 3\), got values in \[0, 5\]"),
        ([0, 1], ValueError, "Got 2 speaker_ids for a batch of 4"),
        (1.5, ValueError, "A speaker is an id or a name, got 1.5"),
        (torch.tensor([0.0, 1.0, 1.0, 1.0]), ValueError, "must hold integer ids"),
    ],
)
def test_bad_speaker_ids_are_named(speaker_ids, error, message):
    model = speaker_model()
    with pytest.raises(error, match=message):
        model(tiny_inputs("audio"), speaker_ids=speaker_ids)


def test_speaker_ids_for_a_model_without_speakers_are_refused():
    model = VQVAEModel(tiny_config("audio")).eval()
    codes = model.encode(tiny_inputs("audio")).codes
    with pytest.raises(ValueError, match=r"no speakers \(config.num_speakers=0\)"):
        model.decode(codes, speaker_ids=0)


# ---- spectral loss


def test_the_spectral_loss_is_zero_for_equal_waveforms_and_grows_with_distortion():
    clean = torch.sin(torch.arange(2048) / 5.0)[None, None]
    noisy = clean + 0.1 * torch.randn_like(clean)
    noisier = clean + 0.5 * torch.randn_like(clean)
    sizes = [64, 128]
    assert multi_resolution_stft_loss(clean, clean, sizes) == 0
    assert (
        0
        < multi_resolution_stft_loss(noisy, clean, sizes)
        < multi_resolution_stft_loss(noisier, clean, sizes)
    )


def test_the_spectral_loss_joins_the_loss_with_its_weight():
    model = VQVAEModel(tiny_config("audio", spectral_loss_weight=0.5)).eval()
    outputs = model(tiny_inputs("audio"))
    without = outputs.reconstruction_loss + outputs.codebook_loss + 0.25 * outputs.commitment_loss
    assert outputs.spectral_loss > 0
    assert torch.allclose(outputs.loss, without + 0.5 * outputs.spectral_loss)
    assert VQVAEModel(tiny_config("audio")).eval()(tiny_inputs("audio")).spectral_loss is None


# ---- data and training


def test_speaker_names_become_sorted_ids_shared_by_both_splits():
    train = Dataset.from_dict({"x": [1, 2, 3], "speaker": ["cy", "ann", "cy"]})
    validation = Dataset.from_dict({"x": [4], "speaker": ["ann"]})
    train, validation, names = encode_speaker_column(train, validation, "speaker")
    assert names == ["ann", "cy"]
    assert train["speaker"] == [1, 0, 1] and validation["speaker"] == [0]


@pytest.mark.parametrize(
    "train, validation, message",
    [
        (["ann", None], ["ann"], "missing values in the training split"),
        (["ann", "bob"], ["dan"], r"speakers the training split lacks: \['dan'\]"),
    ],
)
def test_bad_speaker_columns_are_refused(train, validation, message):
    with pytest.raises(ValueError, match=message):
        encode_speaker_column(
            Dataset.from_dict({"speaker": train}), Dataset.from_dict({"speaker": validation}), "speaker"
        )


def test_a_missing_speaker_column_lists_the_columns():
    with pytest.raises(ValueError, match=r"Speaker column 'who' not found.*\['speaker'\]"):
        encode_speaker_column(Dataset.from_dict({"speaker": ["a"]}), None, "who")


@pytest.fixture(scope="module")
def speaker_parquet(tmp_path_factory):
    """40 tones, each 'spoken' by one of three speakers."""
    tones = make_tones(40, duration=0.25)
    tones = tones.add_column("speaker", [SPEAKERS[i % 3] for i in range(len(tones))])
    path = tmp_path_factory.mktemp("speakers") / "train.parquet"
    tones.to_parquet(path)
    return path


def test_train_vqvae_learns_the_speakers_of_the_speaker_column(speaker_parquet, tmp_path):
    load_script(EXAMPLES / "train_vqvae.py").main(
        [
            "--data_files", str(speaker_parquet), "--audio_column", "audio", "--speaker_column", "speaker",
            "--modality", "audio", "--output_dir", str(tmp_path), "--max_train_steps", "3",
            "--train_batch_size", "4", "--validation_split_percentage", "10", "--report_to", "none",
            "--config_overrides", "hidden_channels=16,residual_channels=8,codebook_size=16,embedding_dim=8,"
            "sample_size=512,sampling_rate=8000,downsample_factors=16,spectral_loss_weight=0.01,"
            "speaker_adversary_weight=0.01",
        ]
    )  # fmt: skip
    model = VQVAEModel.from_pretrained(tmp_path)
    assert model.config.id2speaker == dict(enumerate(SPEAKERS))
    # Every speaker's vector moved away from its zero init: the batches carried the speaker ids.
    assert (model.decoder.speaker_embedding.weight.abs().sum(dim=1) > 0).all()
    history = (tmp_path / "training_history.jsonl").read_text()
    assert '"spectral_loss"' in history and '"speaker_adversary_loss"' in history


def test_a_speaker_adversary_without_a_speaker_column_is_refused(speaker_parquet, tmp_path):
    with pytest.raises(ValueError, match="speaker_adversary_weight.*--speaker_column"):
        load_script(EXAMPLES / "train_vqvae.py").main(
            [
                "--data_files", str(speaker_parquet), "--audio_column", "audio", "--modality", "audio",
                "--output_dir", str(tmp_path), "--max_train_steps", "1", "--report_to", "none",
                "--config_overrides", "sample_size=512,sampling_rate=8000,speaker_adversary_weight=0.01",
            ]
        )  # fmt: skip


# ---- whole recordings, conversion


def test_recordings_reconstruct_alike_at_any_level_and_chunking_leaves_no_seams():
    model = speaker_model("audio", audio_peak_level=0.9)
    take = 0.5 * torch.randn(1, 5000, generator=torch.Generator().manual_seed(0)).clamp(-2, 2) / 2
    whole = reconstruct_recording(model, take, speaker_ids="bob")
    chunked = reconstruct_recording(model, take, speaker_ids="bob", chunk_codes=40)
    quiet = reconstruct_recording(model, take * 0.1, speaker_ids="bob")
    assert whole.shape == take.shape
    assert torch.allclose(chunked, whole, atol=1e-5)
    unclipped = whole.abs() < 1
    assert unclipped.float().mean() > 0.1
    assert torch.allclose(quiet[unclipped] * 10, whole[unclipped], atol=1e-5)  # the gain is undone on output


@pytest.mark.parametrize(
    "waveform, message", [(torch.zeros(1, 1000), "silent"), (torch.zeros(1, 0), "empty")]
)
def test_silent_or_empty_recordings_are_refused(waveform, message):
    with pytest.raises(ValueError, match=message):
        convert_voice(speaker_model(), waveform, "bob")


def test_conversion_needs_a_model_with_speakers():
    with pytest.raises(ValueError, match="needs a VQ-VAE whose decoder has speakers"):
        convert_voice(VQVAEModel(tiny_config("audio")).eval(), torch.randn(1, 512), 0)


def test_conversion_is_decoding_with_the_other_speaker():
    model = speaker_model("audio", sample_size=[512])
    take = 0.5 * torch.sin(torch.arange(512) / 3.0)[None]
    converted = convert_voice(model, take, "cy")
    assert model.config.audio_peak_level is None  # recorded levels are kept: gain 1
    codes = model.encode(take[None]).codes
    assert torch.allclose(converted, model.decode(codes, speaker_ids="cy")[0].clamp(-1, 1), atol=1e-6)


@pytest.fixture(scope="module")
def speaker_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speaker-model")
    speaker_model("audio", sampling_rate=8000, audio_peak_level=0.9).save_pretrained(folder)
    return folder


def hf_vqvae(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hf_vqvae.cli", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_cli_convert_writes_the_take_in_the_other_voice(speaker_model_dir, tmp_path):
    source = tmp_path / "in.wav"
    soundfile.write(source, 0.3 * np.sin(np.arange(16000) / 4.0).astype(np.float32), 16000)
    result = hf_vqvae(
        "convert", speaker_model_dir, source, "--speaker", "cy", "--output", tmp_path / "out.wav"
    )
    assert result.returncode == 0, result.stderr
    assert "resampled from 16000 Hz" in result.stdout
    converted, rate = soundfile.read(tmp_path / "out.wav")
    assert rate == 8000 and len(converted) == 8000


@pytest.mark.parametrize(
    "speaker, content, message",
    [
        ("dan", "tone", "Unknown speaker 'dan'"),
        ("7", "tone", "Speaker id 7 is out of range"),
        ("bob", "silence", "silent"),
        ("bob", "empty", "cannot read|empty"),
    ],
)
def test_cli_convert_names_bad_input_and_writes_nothing(
    speaker_model_dir, tmp_path, speaker, content, message
):
    source = tmp_path / "in.wav"
    samples = {"tone": np.sin(np.arange(800) / 4.0), "silence": np.zeros(800), "empty": np.zeros(0)}[content]
    soundfile.write(source, samples.astype(np.float32), 8000)
    result = hf_vqvae(
        "convert", speaker_model_dir, source, "--speaker", speaker, "--output", tmp_path / "out.wav"
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not list(tmp_path.glob("out.wav*"))


# ---- pipeline


@pytest.fixture(scope="module")
def speaker_pipe(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speaker-pipeline")
    vqvae = speaker_model("audio")
    vqvae.save_pretrained(folder)
    prior_config = VQPriorConfig(
        codebook_size=vqvae.config.codebook_size, code_shape=vqvae.config.code_shape, hidden_size=16,
        num_layers=1, num_heads=2,
    )  # fmt: skip
    VQPriorModel(prior_config).save_pretrained(folder / "prior")
    pipe = pipeline("vq-sample", model=str(folder))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_pipeline_samples_cycle_through_the_speakers_by_default(speaker_pipe):
    cycled = speaker_pipe(num_samples=3, seed=0, output_type="pt")
    named = speaker_pipe(num_samples=3, seed=0, output_type="pt", speaker_ids=SPEAKERS)
    one = speaker_pipe(num_samples=3, seed=0, output_type="pt", speaker_ids="bob")
    assert all(torch.equal(a["audio"], b["audio"]) for a, b in zip(cycled, named, strict=True))
    assert torch.equal(one[1]["audio"], cycled[1]["audio"])
    assert not torch.equal(one[0]["audio"], cycled[0]["audio"])


def test_pipeline_names_a_bad_speaker_before_sampling(speaker_pipe):
    with pytest.raises(ValueError, match="Unknown speaker 'dan'"):
        speaker_pipe(num_samples=2, speaker_ids="dan")


@pytest.mark.slow
def test_evaluate_samples_scores_voices_conversion_and_level(speaker_parquet, tmp_path):
    common = [
        "--data_files", str(speaker_parquet), "--audio_column", "audio", "--label_column", "label",
        "--validation_split_percentage", "20", "--report_to", "none", "--train_batch_size", "4",
        "--output_dir", str(tmp_path / "model"), "--max_train_steps", "2",
    ]  # fmt: skip
    load_script(EXAMPLES / "train_vqvae.py").main(
        [
            *common, "--modality", "audio", "--speaker_column", "speaker", "--config_overrides",
            "hidden_channels=16,residual_channels=8,codebook_size=16,embedding_dim=8,sample_size=512,"
            "sampling_rate=8000,downsample_factors=16,audio_peak_level=0.9",
        ]
    )  # fmt: skip
    load_script(EXAMPLES / "train_prior.py").main(
        [*common, "--vqvae_name_or_path", str(tmp_path / "model"), "--hidden_size", "16", "--num_layers", "1"]
        + ["--num_heads", "2", "--condition_dropout", "0.1", "--num_validation_samples", "2"]
    )
    load_script(EXAMPLES / "evaluate_samples.py").main(
        [
            "--model_name_or_path", str(tmp_path / "model"), "--data_files", str(speaker_parquet),
            "--audio_column", "audio", "--label_column", "label", "--speaker_column", "speaker",
            "--validation_split_percentage", "20", "--classifier_dir", str(tmp_path / "digits"),
            "--speaker_classifier_dir", str(tmp_path / "speakers"), "--output_dir", str(tmp_path / "sweep"),
            "--classifier_epochs", "1", "--samples_per_class", "2", "--guidance_scales", "1", "2",
        ]
    )  # fmt: skip
    summary = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    real, rows = summary["real"], summary["sweep"]
    for key in (
        "conversion_target_speaker_accuracy",
        "conversion_digit_accuracy",
        "speaker_classifier_accuracy",
    ):
        assert 0 <= real[key] <= 1
    # Reconstructing a take at its recorded level or peak-normalised differs only by the restored gain.
    assert real["recording_snr_db_largest_gap"] < 0.01
    assert [row["guidance_scale"] for row in rows] == [1, 2]
    assert all(row["speaker_accuracy"] is not None and row["harmonicity"] is not None for row in rows)


@pytest.mark.parametrize("modality", MODALITIES)
def test_the_speaker_adversary_trains_in_training_mode_only_and_reverses_its_gradient(modality):
    model = speaker_model(modality, speaker_adversary_weight=0.5).train()
    inputs = tiny_inputs(modality)
    outputs = model(inputs, speaker_ids=torch.arange(len(inputs)) % len(SPEAKERS))
    others = outputs.reconstruction_loss + outputs.codebook_loss + 0.25 * outputs.commitment_loss
    assert outputs.speaker_adversary_loss > 0
    assert torch.allclose(outputs.loss, others + 0.5 * outputs.speaker_adversary_loss)
    assert model(tiny_inputs(modality)).speaker_adversary_loss is None  # no speaker ids, nothing to guess
    assert model.eval()(tiny_inputs(modality), speaker_ids=0).speaker_adversary_loss is None

    adversary = model.speaker_adversary
    latents = torch.randn(2, model.config.embedding_dim, *model.config.code_shape, requires_grad=True)
    adversary(latents, torch.tensor([0, 2])).backward()
    reversed_gradient = latents.grad.clone()
    latents.grad = None
    hidden = adversary.layers(latents).flatten(2).mean(dim=2)
    torch.nn.functional.cross_entropy(adversary.classifier(hidden), torch.tensor([0, 2])).backward()
    assert reversed_gradient.abs().sum() > 0
    assert torch.allclose(reversed_gradient, -latents.grad)


def test_a_speaker_adversary_can_be_added_to_or_dropped_from_a_saved_model(tmp_path):
    """Its weights are training-only: a checkpoint may carry them or not, whatever the loading config says."""
    plain = speaker_model("audio")
    plain.save_pretrained(tmp_path / "plain")
    added = VQVAEModel.from_pretrained(tmp_path / "plain", speaker_adversary_weight=0.5)
    assert added.speaker_adversary is not None
    assert all(torch.isfinite(p).all() for p in added.speaker_adversary.parameters())
    assert added.speaker_adversary.classifier.weight.abs().sum() > 0  # initialised, not left empty

    trained = speaker_model("audio", speaker_adversary_weight=0.5)
    trained.save_pretrained(tmp_path / "trained")
    dropped = VQVAEModel.from_pretrained(tmp_path / "trained", speaker_adversary_weight=0.0)
    assert dropped.speaker_adversary is None
    inputs = tiny_inputs("audio")
    with torch.no_grad():
        torch.testing.assert_close(
            dropped.eval()(inputs, speaker_ids=1).reconstruction,
            trained.eval()(inputs, speaker_ids=1).reconstruction,
        )
    with pytest.raises(ValueError, match="does not match its config"):  # other weights stay strict
        VQVAEModel.from_pretrained(tmp_path / "trained", hidden_channels=32)


def test_a_speaker_adversary_with_a_frozen_encoder_is_refused(speaker_parquet, tmp_path):
    model = speaker_model("audio", speaker_adversary_weight=0.5)
    model.save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="--train_decoder_only freezes"):
        load_script(EXAMPLES / "train_vqvae.py").main(
            [
                "--model_name_or_path", str(tmp_path / "model"), "--train_decoder_only", "--data_files",
                str(speaker_parquet), "--audio_column", "audio", "--speaker_column", "speaker", "--output_dir",
                str(tmp_path / "out"), "--max_train_steps", "1", "--report_to", "none",
            ]
        )  # fmt: skip


def test_the_speaker_adversary_comes_with_speakers_only():
    assert VQVAEModel(tiny_config("audio", speaker_adversary_weight=0.5)).speaker_adversary is None
    assert speaker_model("audio").speaker_adversary is None
    model = VQVAEModel(tiny_config("audio", speaker_adversary_weight=0.5))
    model.add_speakers(SPEAKERS)
    assert model.speaker_adversary.classifier.out_features == len(SPEAKERS)


def test_code_noise_replaces_codes_in_training_only():
    model = speaker_model("audio", code_noise=0.5)
    inputs = tiny_inputs("audio")
    with torch.no_grad():
        clean = model.eval()(inputs, speaker_ids=0).reconstruction
        again = model(inputs, speaker_ids=0).reconstruction
        model.train()
        model.quantizer.eval()  # keep the codebook still, so that only the noise differs
        noisy = model(inputs, speaker_ids=0).reconstruction
    assert torch.equal(clean, again)
    assert not torch.allclose(noisy, clean)
    with pytest.raises(ValueError, match=r"code_noise must lie in \[0, 1\)"):
        tiny_config("audio", code_noise=1.0)


def test_cli_evaluate_decodes_each_take_with_its_speaker(speaker_model_dir, speaker_parquet, tmp_path):
    argv = ["evaluate", str(speaker_model_dir), "--data", str(speaker_parquet), "--column", "audio"]
    with_speakers, mean_speaker = tmp_path / "speakers.json", tmp_path / "mean.json"
    assert cli_main([*argv, "--speaker_column", "speaker", "--output_json", str(with_speakers)]) == 0
    assert cli_main([*argv, "--output_json", str(mean_speaker)]) == 0
    # The speakers' vectors differ (random in this model), so decoding with the mean one gives other numbers.
    assert json.loads(with_speakers.read_text())["snr_db"] != json.loads(mean_speaker.read_text())["snr_db"]


def test_cli_sample_and_decode_take_speakers(speaker_model_dir, tmp_path, capsys):
    folder = tmp_path / "pipeline"
    shutil.copytree(speaker_model_dir, folder)
    config = VQVAEModel.from_pretrained(folder).config
    prior = VQPriorConfig(
        codebook_size=config.codebook_size,
        code_shape=config.code_shape,
        hidden_size=16,
        num_layers=1,
        num_heads=2,
    )
    VQPriorModel(prior).save_pretrained(folder / "prior")
    assert (
        cli_main(
            [
                "sample",
                str(folder),
                "--num_samples",
                "2",
                "--speakers",
                "cy",
                "--output_dir",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    sampled = [soundfile.read(tmp_path / "s" / f"sample_{i}.wav")[0] for i in range(2)]
    assert len(sampled) == 2
    codes = tmp_path / "codes.safetensors"
    save_file({"codes": torch.zeros(1, *config.code_shape, dtype=torch.long)}, codes)
    for speaker in ("ann", "2"):
        assert (
            cli_main(
                [
                    "decode",
                    str(folder),
                    str(codes),
                    "--speaker",
                    speaker,
                    "--output_dir",
                    str(tmp_path / speaker),
                ]
            )
            == 0
        )
    ann, cy = (soundfile.read(tmp_path / name / "decoded_0.wav")[0] for name in ("ann", "2"))
    assert not np.allclose(ann, cy)
    with pytest.raises(SystemExit):
        cli_main(
            ["decode", str(folder), str(codes), "--speaker", "dan", "--output_dir", str(tmp_path / "dan")]
        )
    assert "Unknown speaker 'dan'" in capsys.readouterr().err
