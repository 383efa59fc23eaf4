"""The Colab notebooks: stripped in git, valid nbformat v4, and they run top to bottom.

Each notebook is executed with a real Jupyter kernel (nbclient) on tiny settings injected
papermill-style: a cell inserted right after the cell tagged ``parameters`` overrides its
constants (1 epoch, 4 base filters, 32 px, a tiny synthetic dataset made here). The kernel
is a ``python3`` kernelspec written into a temporary ``JUPYTER_PATH`` that runs this very
interpreter, so the notebooks see the same installed package as the tests.

All four run in the default suite (about 3 minutes together on a 2-core CPU), so CI
executes every notebook on every submission.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
COLAB = ROOT / "colab"
NOTEBOOKS = [
    "01_quickstart",
    "02_paper_study",
    "03_gradcam",
    "04_export_and_scenes",
]
#: Settings shared by every notebook on CI: the smallest networks that still train.
TINY = {
    "EPOCHS": 1,
    "BASE_FILTERS": 4,
    "IMAGE_SIZE": 32,
    "DEPTH": 2,
    "BATCH_SIZE": 8,
}
#: Extra settings per notebook.
TINY_EXTRA = {
    "01_quickstart": {"PRESET": "quick"},
    "02_paper_study": {
        "STUDY": "quick",
        "BASES": ["unet", "unetpp"],
        "LOSSES": ["dice"],
        "ATTENTION_MODELS": ["unetpp_spatial_ctx"],
        "FIGURE_TILES": 2,
    },
    # the recipes for real imagery name their own model and loss: the notebooks' MODEL/MODELS
    # and the tiny constants must override them as `train --preset ... --model ...` does (two
    # epochs: their one-epoch warm-up needs a longer run)
    "03_gradcam": {
        "PRESET": "fast",
        "EPOCHS": 2,
        "MODELS": ["unet", "unetpp_spatial_ctx"],
        "N_TILES": 2,
    },
    "04_export_and_scenes": {
        "PRESET": "strong",
        "EPOCHS": 2,
        "MODEL": "unet",
        "SCENE_TILE_SIZE": 64,
        "WINDOW": 64,
    },
}
#: Cells every notebook must have (by a substring of their source).
REQUIRED = {
    "01_quickstart": ["train(config", "evaluate_run(", "predictions.png"],
    "02_paper_study": ["run_study(", "table1.md", "table3.md", "fig6_gradcam.png"],
    "03_gradcam": ["explain_run(", "mean_energy_inside"],
    "04_export_and_scenes": ["export_run(", "tf.saved_model.load(", "predict_scene("],
}


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(COLAB / f"{name}.ipynb", as_version=4)


def parameters_index(nb: nbformat.NotebookNode) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


def parameter_names(nb: nbformat.NotebookNode) -> set[str]:
    source = nb.cells[parameters_index(nb)].source
    return {line.split("=")[0].strip() for line in source.splitlines() if " = " in line}


def inject(nb: nbformat.NotebookNode, values: dict[str, object]) -> nbformat.NotebookNode:
    """Insert a cell after the ``parameters`` cell assigning ``values`` (like papermill)."""
    lines = ["# injected by tests/test_notebooks.py"]
    lines += [f"{key} = {value!r}" for key, value in values.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(parameters_index(nb) + 1, cell)
    return nb


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_valid_and_stripped(name):
    path = COLAB / f"{name}.ipynb"
    nb = read(name)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path} cell {i} has outputs: run strip_outputs.py"
            assert cell.execution_count is None, f"{path} cell {i} has an execution count"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for needle in REQUIRED[name]:
        assert needle in code, f"{path} lacks {needle!r}"
    first = next(c for c in nb.cells if c.cell_type == "code").source
    assert "google.colab" in first and "REPO_URL" in first and "pip install" in first
    assert parameters_index(nb) < 4, "the parameters cell belongs at the top"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_injected_names_are_parameters(name):
    """The test overrides only constants the notebook declares, so a rename fails here."""
    names = parameter_names(read(name))
    unknown = set(TINY) | set(TINY_EXTRA[name]) | {"DATA_DIR", "OUT_DIR"}
    assert unknown <= names, f"not in the parameters cell: {sorted(unknown - names)}"


def test_inject_places_cell_after_parameters():
    nb = inject(read("01_quickstart"), {"EPOCHS": 1})
    i = parameters_index(nb)
    assert nb.cells[i + 1].source.endswith("EPOCHS = 1")
    assert nb.cells[i + 1].metadata["tags"] == ["injected-parameters"]


def test_colab_links_match_the_files():
    doc = (ROOT / "docs" / "readme_notebooks.md").read_text()
    for name in NOTEBOOKS:
        url = f"https://colab.research.google.com/github/landslide-tf/landslide_tf/blob/main/colab/{name}.ipynb"
        assert url in doc, f"docs/readme_notebooks.md lacks the Colab link of {name}"
        assert url in "".join(c.source for c in read(name).cells if c.cell_type == "markdown")


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory, monkeypatch_module):
    """A ``python3`` kernelspec for this interpreter, first on ``JUPYTER_PATH``."""
    base = tmp_path_factory.mktemp("jupyter")
    spec_dir = base / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (landslide_tf tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch_module.setenv("JUPYTER_PATH", str(base))
    # Anything the notebooks would put in ~/.cache goes to a temporary folder instead.
    monkeypatch_module.setenv("LANDSLIDE_TF_DATA", str(base / "default-data"))
    return base


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """12 small landslide tiles (48..72 px) and 4 negatives in the Bijie layout."""
    from landslide_tf.data import synthesize

    return synthesize(tmp_path_factory.mktemp("tiny") / "bijie", n=12, seed=0, negatives=4,
                      min_size=48, max_size=72)  # fmt: skip


def execute(name: str, tmp_path: Path, data: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = inject(read(name), {"DATA_DIR": str(data), "OUT_DIR": "out", **TINY, **TINY_EXTRA[name]})
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        "import sys\n"
        f"assert sys.prefix == {sys.prefix!r}, f'kernel runs {{sys.executable}}'"
    ))  # fmt: skip
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    start, cpu = time.perf_counter(), _children_cpu()
    client.execute()  # raises CellExecutionError on the first failing cell
    print(
        f"{name}: wall {time.perf_counter() - start:.1f} s, kernel CPU {_children_cpu() - cpu:.1f} s"
    )
    nbformat.write(nb, tmp_path / f"{name}.executed.ipynb")
    return nb


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel, once it has exited
    return usage.ru_utime + usage.ru_stime


def outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text"))
    return "\n".join(parts)


def count_images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))


def test_quickstart_runs(kernel_env, tiny_data, tmp_path):
    nb = execute("01_quickstart", tmp_path, tiny_data)
    run = tmp_path / "out" / "unetpp_spatial_ctx"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["miou"] <= 1.0
    assert json.loads((run / "config.json").read_text())["epochs"] == 1
    text = outputs_text(nb)
    assert "| test |" in text and "| val |" in text
    assert count_images(nb) >= 4  # tiles, loss curve, predictions, raw-tile prediction


def test_paper_study_runs(kernel_env, tiny_data, tmp_path):
    nb = execute("02_paper_study", tmp_path, tiny_data)
    out = tmp_path / "out"
    for name in ("table1.md", "table3.md", "fig4_loss_curves.png", "fig5_predictions.png",
                 "fig6_gradcam.png", "README.md"):  # fmt: skip
        assert (out / name).is_file(), name
    assert len(list((out / "runs").glob("*/metrics.json"))) == 3
    assert "Table 1" in outputs_text(nb)
    assert count_images(nb) >= 3


def test_gradcam_runs(kernel_env, tiny_data, tmp_path):
    nb = execute("03_gradcam", tmp_path, tiny_data)
    for model in TINY_EXTRA["03_gradcam"]["MODELS"]:
        summary = json.loads((tmp_path / "out" / "gradcam" / model / "energy.json").read_text())
        assert summary["n_tiles"] == 2
        config = json.loads((tmp_path / "out" / "runs" / model / "config.json").read_text())
        assert (config["model"], config["depth"], config["epochs"]) == (model, 2, 2)
        assert (config["loss"], config["optimizer"]) == ("bce_dice", "adamw")  # the fast preset's
    text = outputs_text(nb)
    assert "energy inside" in text
    assert count_images(nb) >= 2


def test_export_and_scenes_runs(kernel_env, tiny_data, tmp_path):
    nb = execute("04_export_and_scenes", tmp_path, tiny_data)
    out = tmp_path / "out"
    assert (out / "savedmodel" / "saved_model.pb").is_file()
    config = json.loads((out / "runs" / "unet" / "config.json").read_text())
    assert (config["model"], config["base_filters"], config["image_size"]) == ("unet", 4, 32)
    assert (config["loss"], config["tta_transforms"]) == ("bce_dice", "dihedral")  # strong's
    assert list((out / "scene").glob("probability.*"))
    text = outputs_text(nb)
    assert "max |SavedModel - package|" in text
    assert count_images(nb) >= 2
