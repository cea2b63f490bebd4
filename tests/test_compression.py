"""Bitstreams (`pipelines/compression.py`, `hf-vqvae compress` / `decompress`): codes entropy-coded with the prior
decode back exactly, in another process with another thread count, at about the prior's likelihood; damaged,
foreign and future files are refused with a reason."""

import math
import os
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_inputs
from test_pipeline import quiet, tiny_prior, tiny_vqvae

from hf_vqvae import VQSamplePipeline
from hf_vqvae.cli import main
from hf_vqvae.pipelines import compression
from hf_vqvae.pipelines.compression import (
    CompressedFileError,
    compress,
    compress_many,
    decompress,
    decompress_many,
    read_header,
)
from hf_vqvae.pipelines.range_coding import padded_words, range_coder, shortest_payload


@pytest.fixture(scope="module")
def pipe():
    vqvae = tiny_vqvae("image")  # 16x16 images, 4x4 codes, K=16
    prior = tiny_prior(vqvae.config.code_shape, num_classes=3, condition_dropout=0.1)
    return quiet(VQSamplePipeline(model=vqvae, prior=prior))


def decoded_codes(pipe, inputs) -> torch.Tensor:
    with torch.no_grad():
        return pipe.model.decode(pipe.model.encode(inputs[None]).codes)[0].clamp(-1, 1)


@pytest.mark.parametrize("class_label", [None, 2])
def test_a_bitstream_decodes_to_the_inputs_codes(pipe, class_label):
    inputs = tiny_inputs("image")[0]
    data = compress(pipe.model, pipe.prior, inputs, class_label)
    header = read_header(data)
    assert (header.modality, header.class_label, header.code_shape) == ("image", class_label, (4, 4))
    torch.testing.assert_close(
        decompress(pipe.model, pipe.prior, data), decoded_codes(pipe, inputs), rtol=0, atol=1e-6
    )


def test_the_pixelcnn_prior_codes_too():
    vqvae = tiny_vqvae("image")
    prior = tiny_prior(vqvae.config.code_shape, prior_type="pixelcnn")
    inputs = tiny_inputs("image")[1]
    data = compress(vqvae, prior, inputs)
    with torch.no_grad():
        expected = vqvae.decode(vqvae.encode(inputs[None]).codes)[0].clamp(-1, 1)
    torch.testing.assert_close(decompress(vqvae, prior, data), expected, rtol=0, atol=1e-6)


def test_the_payload_is_about_the_priors_likelihood_of_the_codes(pipe):
    inputs = tiny_inputs("image")
    payload_bits, nll_bits = [], []
    header_bytes = 14 + 1 + 2 * 2 + 4  # magic .. speaker, 2 axes, CRC-32
    for example in inputs:
        payload_bits.append(8 * (len(compress(pipe.model, pipe.prior, example, 1)) - header_bytes))
        with torch.no_grad():
            codes = pipe.model.encode(example[None]).codes
            loss = pipe.prior(codes, class_labels=torch.tensor([1])).loss.item()
        nll_bits.append(loss * codes.numel() / math.log(2))
    for payload, nll in zip(payload_bits, nll_bits, strict=True):
        # The final interval, of width 2^-nll, holds a number of ceil(nll / 8) bytes; the coder's probabilities
        # (integers, every code non-zero) cost a little more than the prior's.
        assert payload <= 8 * math.ceil(nll / 8) + 8
    # The file's length says where the number ends, so a payload may be a little shorter than the information it
    # carries, but not by a byte per file.
    assert sum(payload_bits) >= sum(nll_bits) - 8 * len(inputs)


def test_the_shortest_payload_decodes_to_the_codes_within_a_byte_of_their_information():
    constriction = range_coder()
    rng = np.random.default_rng(0)
    overheads = []
    for _ in range(100):
        tables = rng.dirichlet(np.full(64, 0.1), size=40)
        codes = np.array([rng.choice(64, p=row) for row in tables], dtype=np.int32)
        information = -np.log2(tables[np.arange(40), codes]).sum()
        payload = shortest_payload(codes, tables)
        decoder = constriction.stream.queue.RangeDecoder(padded_words(payload))
        decoded = decoder.decode(constriction.stream.model.Categorical(perfect=False), tables)
        assert np.array_equal(decoded, codes)
        assert len(payload) <= math.ceil(information / 8) + 1
        overheads.append(8 * len(payload) - information)
    # The sealed output carries about 15 bits more than the information (measured); cut, a few.
    assert np.mean(overheads) < 6


def test_version_1_files_whole_little_endian_words_still_decode(pipe, monkeypatch):
    """Files of format version 1 stored the range coder's sealed words, little-endian."""

    def sealed_words(codes, tables):
        constriction = range_coder()
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode(codes.astype(np.int32), constriction.stream.model.Categorical(perfect=False), tables)
        return encoder.get_compressed().astype("<u4").tobytes()

    inputs = tiny_inputs("image")[0]
    with monkeypatch.context() as patched:
        patched.setattr(compression, "shortest_payload", sealed_words)
        patched.setattr(compression, "FORMAT_VERSION", 1)
        version_1 = compress(pipe.model, pipe.prior, inputs, 1)
    version_2 = compress(pipe.model, pipe.prior, inputs, 1)
    assert (read_header(version_1).version, read_header(version_2).version) == (1, 2)
    assert len(version_1) > len(version_2) and (len(version_1) - 23) % 4 == 0
    torch.testing.assert_close(
        decompress(pipe.model, pipe.prior, version_1), decoded_codes(pipe, inputs), rtol=0, atol=1e-6
    )


def test_another_process_with_other_threads_decodes_the_same(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "model")
    inputs = tiny_inputs("image")[2]
    (tmp_path / "file.vqz").write_bytes(pipe.compress(inputs, class_labels=1))
    script = textwrap.dedent(
        """
        import sys, torch
        torch.set_num_threads(2)
        from transformers import pipeline
        import hf_vqvae
        pipe = pipeline("vq-sample", model=sys.argv[1])
        pipe.prior.generate(5, class_labels=[0, 1, 2, 0, 1])  # another batch size through the same prior first
        torch.save(pipe.decompress(open(sys.argv[2], "rb").read(), output_type="pt"), sys.argv[3])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "model"), str(tmp_path / "file.vqz"), str(tmp_path / "out.pt")],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    expected = pipe.decompress((tmp_path / "file.vqz").read_bytes(), output_type="pt")
    assert torch.equal(torch.load(tmp_path / "out.pt"), expected)
    torch.testing.assert_close(expected, (decoded_codes(pipe, inputs) + 1) / 2, rtol=0, atol=1e-6)


def with_checksum(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[:-3], "damaged or truncated"),
        (lambda data: data[:10] + bytes([data[10] ^ 1]) + data[11:], "damaged or truncated"),
        (lambda data: b"", "Not an hf_vqvae compressed file"),
        (lambda data: b"GIF89a" + data[6:], "Not an hf_vqvae compressed file"),
        (lambda data: with_checksum(data[:4] + bytes([3]) + data[5:-4]), r"format version 3; this hf_vqvae reads versions 1 and 2 \(a newer"),
        # A payload no code leads to (all ones: past the top of the coder's range), its checksum rewritten to match.
        (lambda data: with_checksum(data[:23] + b"\xff" * (len(data) - 27)), "damaged: its payload does not decode"),
    ],
    ids=["truncated", "flipped-bit", "empty", "other-format", "future-version", "undecodable-payload"],
)  # fmt: skip
def test_damaged_and_future_files_are_refused_with_a_reason(pipe, damage, message):
    data = pipe.compress(tiny_inputs("image")[0], class_labels=0)
    with pytest.raises(CompressedFileError, match=message):
        pipe.decompress(damage(data))


def test_a_file_of_other_weights_is_refused(pipe):
    data = pipe.compress(tiny_inputs("image")[0])
    other = tiny_prior(pipe.model.config.code_shape, num_classes=3, condition_dropout=0.1)
    with torch.no_grad():
        other.backbone.head.bias.add_(0.01)
    with pytest.raises(CompressedFileError, match="compressed with other model weights"):
        decompress(pipe.model, other, data)


def test_class_names_and_bad_labels(pipe):
    inputs = tiny_inputs("image")[0]
    assert read_header(pipe.compress(inputs, class_labels="dog")).class_label == 1
    with pytest.raises(ValueError, match="Unknown class names"):
        pipe.compress(inputs, class_labels="zebra")


def test_the_command_line_round_trip_and_its_errors(pipe, tmp_path, capsys):
    pipe.save_pretrained(tmp_path / "model")
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    image.save(tmp_path / "photo.png")
    main(
        [
            "compress",
            str(tmp_path / "model"),
            str(tmp_path / "photo.png"),
            "--class_label",
            "1",
            "--output",
            str(tmp_path / "z"),
        ]
    )
    assert "photo.vqz" in capsys.readouterr().out
    main(
        [
            "decompress",
            str(tmp_path / "model"),
            str(tmp_path / "z" / "photo.vqz"),
            "--output",
            str(tmp_path / "back"),
        ]
    )
    expected = pipe.decompress((tmp_path / "z" / "photo.vqz").read_bytes(), output_type="np")
    assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / "back" / "photo.png")), expected)
    (tmp_path / "z" / "bad.vqz").write_bytes(b"HFVQ\x01" + bytes(19))
    with pytest.raises(SystemExit):
        main(
            [
                "decompress",
                str(tmp_path / "model"),
                str(tmp_path / "z" / "bad.vqz"),
                "--output",
                str(tmp_path / "back"),
            ]
        )
    error = capsys.readouterr().err
    assert "cannot decompress" in error and "bad.vqz" in error and "damaged or truncated" in error


def test_video_and_audio_models_code_their_grids():
    for modality in ("audio", "video"):
        vqvae = tiny_vqvae(modality)
        prior = tiny_prior(vqvae.config.code_shape)
        inputs = torch.rand(vqvae.config.in_channels, *tiny_inputs(modality).shape[2:]) * 2 - 1
        if modality == "video":
            inputs = tiny_inputs(modality)[0]
        data = compress(vqvae, prior, inputs)
        assert read_header(data).modality == modality
        with torch.no_grad():
            expected = vqvae.decode(vqvae.encode(inputs[None]).codes)[0].clamp(-1, 1)
        torch.testing.assert_close(decompress(vqvae, prior, data), expected, rtol=0, atol=1e-6)


def test_files_do_not_depend_on_how_many_are_coded_together(pipe):
    inputs = tiny_inputs("image")
    together = compress_many(pipe.model, pipe.prior, inputs[:3], 2)
    assert together == [compress(pipe.model, pipe.prior, example, 2) for example in inputs[:3]]
    unlabelled = compress(pipe.model, pipe.prior, inputs[3])
    decoded = decompress_many(pipe.model, pipe.prior, [together[0], unlabelled, together[2]])
    for example, expected in zip(decoded, (inputs[0], inputs[3], inputs[2]), strict=True):
        torch.testing.assert_close(example, decoded_codes(pipe, expected), rtol=0, atol=1e-6)


def test_a_vqvae_with_speakers_decodes_with_the_speaker_in_the_file():
    vqvae = tiny_vqvae("audio", num_speakers=3)
    with torch.no_grad():
        vqvae.decoder.speaker_embedding.weight.normal_(0, 1)  # speakers that change the output
    prior = tiny_prior(vqvae.config.code_shape)
    inputs = torch.rand(2, 256) * 2 - 1
    data = compress(vqvae, prior, inputs, speaker_id=2)
    assert read_header(data).speaker_id == 2 and read_header(compress(vqvae, prior, inputs)).speaker_id == 0
    with torch.no_grad():
        expected = vqvae.decode(vqvae.encode(inputs[None]).codes, speaker_ids=torch.tensor([2]))[0].clamp(
            -1, 1
        )
    torch.testing.assert_close(decompress(vqvae, prior, data), expected, rtol=0, atol=1e-6)
