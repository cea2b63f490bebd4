"""Reliability beyond the first list of faults: output paths that cannot be written (a file where a folder goes, a
folder where a file goes) refused before any work by every CLI command and by the pipeline's save_pretrained;
`hf-vqvae demo --num_threads 0`; examples/evaluate_samples.py on an unconditional prior, on data with other
classes, with a classifier kept for another model; train_prior.py --condition_dropout without class labels."""

from pathlib import Path

import pytest
from conftest import EXAMPLES, load_script
from test_cli import IMAGE_CONFIG, run_failing, save_model, write_inputs
from test_training_scripts import QUIET, SMALL_SHAPES, TINY_PRIOR
from transformers import pipeline

from hf_vqvae import VQPriorModel
from hf_vqvae.cli import main as cli_main
from hf_vqvae.evaluation.sample_classifier import SampleClassifier

EVALUATE_SAMPLES, TRAIN_PRIOR = EXAMPLES / "evaluate_samples.py", EXAMPLES / "train_prior.py"


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not a folder")
    return path


@pytest.fixture
def unconditional_dir(tmp_path) -> Path:
    return save_model(tmp_path / "model", IMAGE_CONFIG)


@pytest.fixture
def conditional_dir(tmp_path) -> Path:
    return save_model(tmp_path / "conditional", IMAGE_CONFIG, num_classes=4)  # builtin:shapes has 4 classes


# ------------------------------------------------------------------------------------ CLI output paths


def test_sample_refuses_an_output_dir_below_a_file_before_sampling(unconditional_dir, a_file, capsys):
    error = run_failing(["sample", str(unconditional_dir), "--output_dir", str(a_file / "samples")], capsys)
    assert f"--output_dir '{a_file / 'samples'}': '{a_file}' is a file, not a folder" in error


def test_decode_refuses_an_output_dir_that_is_a_file(unconditional_dir, a_file, tmp_path, capsys):
    inputs = write_inputs(tmp_path / "inputs", "image")
    codes = tmp_path / "codes.npy"
    assert cli_main(["encode", str(unconditional_dir), *inputs, "--output", str(codes)]) == 0
    error = run_failing(["decode", str(unconditional_dir), str(codes), "--output_dir", str(a_file)], capsys)
    assert f"--output_dir '{a_file}': '{a_file}' is a file, not a folder" in error


def test_encode_refuses_an_output_that_is_a_folder(unconditional_dir, tmp_path, capsys):
    inputs = write_inputs(tmp_path / "inputs", "image")
    folder = tmp_path / "codes.npy"
    folder.mkdir()
    error = run_failing(["encode", str(unconditional_dir), *inputs, "--output", str(folder)], capsys)
    assert f"--output '{folder}' is a folder; give the path of a file to write" in error


def test_evaluate_refuses_an_output_json_that_is_a_folder_before_evaluating(
    unconditional_dir, tmp_path, capsys
):
    argv = ["evaluate", str(unconditional_dir), "--data", "builtin:shapes", "--builtin_num_examples", "4"]
    error = run_failing([*argv, "--output_json", str(tmp_path)], capsys)
    assert f"--output_json '{tmp_path}' is a folder" in error
    assert "psnr" not in capsys.readouterr().out  # nothing was evaluated first


def test_demo_refuses_zero_threads_and_an_output_dir_that_is_a_file(a_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["demo", "--quick", "--num_threads", "0"])
    assert exit_info.value.code == 2
    assert "argument --num_threads: must be an integer >= 1, got 0" in capsys.readouterr().err
    error = run_failing(["demo", "--quick", "--modalities", "image", "--output_dir", str(a_file)], capsys)
    assert f"--output_dir '{a_file}': '{a_file}' is a file, not a folder" in error


# ------------------------------------------------------------------------------------ pipeline


def test_pipeline_save_pretrained_refuses_a_file(unconditional_dir, a_file):
    pipe = pipeline("vq-sample", model=str(unconditional_dir))
    with pytest.raises(NotADirectoryError, match=r"save_directory '.*notes\.txt' is a file; give a folder"):
        pipe.save_pretrained(a_file)
    assert a_file.read_text() == "not a folder"


# ------------------------------------------------------------------------------------ evaluate_samples.py


def evaluate_samples_argv(model_dir: Path, tmp_path: Path) -> list[str]:
    return [
        "--model_name_or_path",
        str(model_dir),
        *SMALL_SHAPES,
        "--label_column",
        "label",
        "--validation_split_percentage",
        "20",
        "--classifier_dir",
        str(tmp_path / "classifier"),
        "--output_dir",
        str(tmp_path / "sweep"),
        "--guidance_scales",
        "1",
        "--samples_per_class",
        "1",
        "--classifier_epochs",
        "1",
    ]


def test_evaluate_samples_refuses_an_unconditional_prior_before_training_a_classifier(
    unconditional_dir, tmp_path
):
    with pytest.raises(ValueError, match=r"the prior is unconditional \(num_classes=0\)"):
        load_script(EVALUATE_SAMPLES).main(evaluate_samples_argv(unconditional_dir, tmp_path))
    assert not (tmp_path / "classifier").exists()


def test_evaluate_samples_refuses_data_with_other_classes(tmp_path):
    three_classes = save_model(tmp_path / "three", IMAGE_CONFIG, num_classes=3)
    with pytest.raises(ValueError, match=r"conditioned on 3 classes, but --label_column 'label' gives 4"):
        load_script(EVALUATE_SAMPLES).main(evaluate_samples_argv(three_classes, tmp_path))
    assert not (tmp_path / "classifier").exists()


def test_evaluate_samples_refuses_a_kept_classifier_of_another_model(conditional_dir, tmp_path):
    SampleClassifier("image", 3, num_classes=2, width=8).save(
        tmp_path / "classifier", validation_accuracy=0.5
    )
    with pytest.raises(
        ValueError, match=r"--classifier_dir .*trained for \{'num_classes': 2\}.*need \{'num_classes': 4\}"
    ):
        load_script(EVALUATE_SAMPLES).main(evaluate_samples_argv(conditional_dir, tmp_path))


def test_evaluate_samples_refuses_an_output_dir_that_is_a_file(conditional_dir, a_file, tmp_path, capsys):
    argv = evaluate_samples_argv(conditional_dir, tmp_path)
    argv[argv.index("--output_dir") + 1] = str(a_file)
    with pytest.raises(SystemExit) as exit_info:
        load_script(EVALUATE_SAMPLES).main(argv)
    assert exit_info.value.code == 2
    assert f"--output_dir '{a_file}' is a file" in capsys.readouterr().err


def test_evaluate_samples_names_plain_integer_classes_after_the_prior(conditional_dir):
    prior = VQPriorModel.from_pretrained(conditional_dir, subfolder="prior")
    script = load_script(EVALUATE_SAMPLES)
    names = script.check_prior_classes(
        script.parse_args(
            [
                "--model_name_or_path",
                "m",
                "--classifier_dir",
                "c",
                "--output_dir",
                "o",
                "--label_column",
                "label",
            ]
        ),
        prior,
        None,
    )
    assert names == ["circle", "square", "triangle", "star"]


# ------------------------------------------------------------------------------------ train_prior.py


def test_train_prior_refuses_condition_dropout_without_labels(unconditional_dir, tmp_path, capsys):
    argv = [
        *TINY_PRIOR,
        *QUIET,
        "--vqvae_name_or_path",
        str(unconditional_dir),
        *SMALL_SHAPES,
        "--output_dir",
        str(tmp_path / "prior"),
        "--max_train_steps",
        "2",
        "--condition_dropout",
        "0.1",
    ]
    with pytest.raises(SystemExit) as exit_info:
        load_script(TRAIN_PRIOR).main(argv)
    assert exit_info.value.code == 2
    assert (
        "--condition_dropout 0.1 drops class labels, but no --label_column gives any"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "prior").exists()
