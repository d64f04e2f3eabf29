"""Importing the package, readers, label tables, configs or the server imports no network code."""

import subprocess
import sys

import pytest

HEAVY = ("kerasbrain.models", "kerasbrain.models.unet", "keras_cv", "kerasbrain.training.train_unet3d",
         "kerasbrain.training.train_unet2d", "kerasbrain.training.scaffold")


def _loaded_after(imports: str, names) -> list[str]:
    code = f"import sys\n{imports}\nprint(' '.join(n for n in {tuple(names)!r} if n in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_readers_configs_and_labels_import_neither_keras_nor_nibabel():
    imports = ("import kerasbrain, kerasbrain.data.labels, kerasbrain.config, kerasbrain.training.config, "
               "kerasbrain.training.config2d, kerasbrain.families, kerasbrain.runs, kerasbrain.windows, "
               "kerasbrain.inference.config")
    assert _loaded_after(imports, HEAVY + ("keras", "tensorflow", "nibabel", "scipy")) == []


@pytest.mark.slow
def test_the_server_imports_no_network_or_training_code():
    # TensorFlow itself imports Keras; what must stay out is kerasbrain's networks, keras-cv and training.
    assert _loaded_after("import kerasbrain.serving.server, kerasbrain.serving.client", HEAVY) == []


def test_families_load_their_code_only_when_used():
    imports = "from kerasbrain.families import get_family; get_family('unet3d'); get_family('unet2d')"
    assert _loaded_after(imports, HEAVY + ("keras",)) == []


def test_the_input_format_registry_and_the_cli_stay_light():
    """The registry and its formats load no reader until a case is read (pydicom, highdicom, nibabel, Keras)."""
    imports = "import kerasbrain.data.io as io; io.input_formats(); import cli.main"
    assert _loaded_after(imports, HEAVY + ("keras", "tensorflow", "nibabel", "pydicom", "highdicom",
                                           "SimpleITK")) == []


def test_evaluation_never_imports_the_families():
    """A family calls evaluation, never the reverse (README, Layout)."""
    import ast
    from pathlib import Path

    for path in sorted((Path(__file__).parents[1] / "kerasbrain" / "evaluation").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("kerasbrain.families"), f"{path} imports {node.module}"
