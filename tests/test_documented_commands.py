"""The commands the documentation gives still run as written: every `python examples/...`, `python -m hf_vqvae...`
and `hf-vqvae ...` line of README.md, examples/README.md and the model cards parses with today's flags (the real
runs take hours and need the shared data), the Python heredocs of the cards compile and import what they name,
and README's quick start runs end to end on tiny settings."""

import ast
import importlib
import re
import shlex
from pathlib import Path

import pytest
from conftest import EXAMPLES, load_script

from hf_vqvae.cli import build_parser, main
from hf_vqvae.training import prior_arguments, train_vqvae

REPOSITORY = Path(__file__).resolve().parents[1]
DOCUMENTS = [
    "README.md",
    "examples/README.md",
    "model_cards/vqvae-cifar10/README.md",
    "model_cards/vqvae-fsdd/README.md",
    "model_cards/vqvae-moving-fmnist/README.md",
]
PYTHON_COMMAND = re.compile(
    r"^(?:\S+=\S+ )*(?:\.venv/bin/)?python (?:(examples/\w+\.py)|-m ([\w.]+))\s+(.*)$"
)


def shell_lines(document: str) -> list[str]:
    """The lines of the document's ```bash blocks, continuation lines joined, heredoc bodies left out."""
    text = (REPOSITORY / document).read_text()
    lines, heredoc_end = [], None
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if heredoc_end is not None:
                heredoc_end = None if line.strip() == heredoc_end else heredoc_end
                continue
            if match := re.search(r"<<'(\w+)'", line):
                heredoc_end = match[1]
            lines.append(line.split("#")[0].strip() if not line.lstrip().startswith("#") else "")
    return [line for line in lines if line]


def heredocs(document: str) -> list[str]:
    """The Python programs of the document's `python - <<'PY'` blocks."""
    text = (REPOSITORY / document).read_text()
    return re.findall(r"python - <<'PY'\n(.*?)\nPY\n", text, re.S)


def parse_arguments(script: str | None, module: str | None, argv: list[str]) -> None:
    """Parse `argv` with the parser of the script or module the command names; argparse exits on a bad flag."""
    name = Path(script).stem if script else module.rsplit(".", 1)[-1]
    if name == "train_vqvae":
        train_vqvae.parse_args(argv)
    elif name == "train_prior":
        prior_arguments.parse_args(argv)
    elif name == "cli":
        build_parser().parse_args(argv)
    else:
        load_script(EXAMPLES / f"{name}.py").parse_args(argv)


def documented_commands() -> list[tuple[str, str]]:
    commands = []
    for document in DOCUMENTS:
        for line in shell_lines(document):
            for command in re.split(r"\s*&&\s*", line):
                if PYTHON_COMMAND.match(command) or command.startswith("hf-vqvae "):
                    commands.append((document, command))
    return commands


@pytest.mark.parametrize(("document", "command"), documented_commands())
def test_documented_commands_parse_with_todays_flags(document, command, capsys):
    if "..." in command:
        pytest.skip("an abbreviated command (its flags are elided)")
    if command.startswith("hf-vqvae "):
        build_parser().parse_args(shlex.split(command)[1:])
        return
    script, module, rest = PYTHON_COMMAND.match(command).groups()
    if module is not None and module.endswith(".cli"):
        build_parser().parse_args(shlex.split(rest))
        return
    parse_arguments(script, module, shlex.split(rest))


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if heredocs(d)])
def test_documented_python_compiles_and_its_imports_resolve(document):
    for program in heredocs(document):
        tree = ast.parse(program)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hf_vqvae"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{document}: {node.module} has no {alias.name}"


def test_every_document_has_commands():
    found = {document for document, _ in documented_commands()}
    assert set(DOCUMENTS) <= found


@pytest.mark.slow
def test_the_quick_start_runs_on_tiny_settings(tmp_path, monkeypatch):
    """README's three commands, with steps, data and model sizes made tiny."""
    monkeypatch.chdir(tmp_path)
    readme = shell_lines("README.md")
    quick_start = [line for line in readme if "builtin:shapes" in line or line.startswith("hf-vqvae sample")]
    assert len(quick_start) == 3, quick_start
    tiny = {
        "--max_train_steps": "2",
        "--output_dir": None,  # kept as written, under tmp_path
    }
    extra = {
        "train_vqvae": ["--builtin_num_examples", "40", "--train_batch_size", "8", "--report_to", "none"]
        + ["--config_overrides", "hidden_channels=16,residual_channels=8,codebook_size=16,embedding_dim=8"],
        "train_prior": ["--builtin_num_examples", "40", "--train_batch_size", "8", "--report_to", "none"]
        + ["--hidden_size", "16", "--num_layers", "1", "--num_heads", "2", "--num_validation_samples", "2"],
    }
    for line in quick_start:
        argv = shlex.split(line)
        for flag, value in tiny.items():
            if flag in argv and value is not None:
                argv[argv.index(flag) + 1] = value
        if argv[0] == "hf-vqvae":
            assert main(argv[1:]) == 0
            continue
        script = Path(argv[1]).stem
        load_script(EXAMPLES / f"{script}.py").main([*argv[2:], *extra[script]])
    assert list((tmp_path / "samples").iterdir())
