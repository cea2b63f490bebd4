"""A normal (non-editable) install runs the package's main job: a wheel built from the checkout, installed into a
fresh virtual environment outside it, runs the demo's fastest path without the repository's `examples/`."""

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_runs_from_an_installed_wheel(tmp_path):
    # Built from a copy of the sources: setuptools keeps a build/ folder, and one left in the checkout by an older
    # build would put modules that no longer exist into the wheel.
    sources = tmp_path / "sources"
    sources.mkdir()
    for part in ("pyproject.toml", "README.md", "LICENSE", "src"):
        if (REPOSITORY / part).is_dir():
            shutil.copytree(
                REPOSITORY / part, sources / part, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
            )
        elif (REPOSITORY / part).exists():
            shutil.copy2(REPOSITORY / part, sources / part)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, sources],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("hf_vqvae-*.whl")
    environment = tmp_path / "fresh"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", site_packages, wheel],
        check=True,
        capture_output=True,
    )
    # The dependencies (torch, transformers, ...) come from this environment's site-packages, put on the path
    # without processing its .pth files, so the editable install of the checkout is not importable there.
    dependencies = sysconfig.get_paths()["purelib"]
    run = subprocess.run(
        [
            python,
            "-c",
            "import sys, hf_vqvae; print(hf_vqvae.__file__); from hf_vqvae.cli import main; "
            "sys.exit(main(sys.argv[1:]))",
            "demo",
            "--quick",
            "--modalities",
            "image",
            "--output_dir",
            str(tmp_path / "demo"),
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": dependencies, "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.splitlines()[0].startswith(site_packages)  # the installed wheel, not the checkout
    assert (tmp_path / "demo" / "image" / "prior" / "config.json").is_file()
