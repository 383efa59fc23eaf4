"""A run trained on a folder of PNG tiles predicts from a PNG: the same bands, the same answer.

Tiny on purpose (32 px, 4 base filters, depth 2, one epoch): the assertions are about the
path (exit codes, the bands read as training read them), not skill.
"""

import cv2
import numpy as np
from band_data import blob_mask

TINY = ["--epochs", "1", "--image-size", "32", "--base-filters", "4", "--depth", "2"]
TINY += ["--model", "unet", "--batch-size", "2", "--verbose", "0"]


def _png_folder(root, n=8, size=32, dem=False, seed=0):
    """``images/`` (8-bit colour PNG, written BGR as OpenCV does) + ``masks/`` (+ ``dem/``)."""
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks", *(("dem",) if dem else ())):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        mask = blob_mask(rng, size)
        rgb = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
        rgb[mask == 1] += np.array([120, 60, 20], np.uint8)  # a reddish scar
        cv2.imwrite(str(root / "images" / f"t{i}.png"), rgb[..., ::-1])
        cv2.imwrite(str(root / "masks" / f"t{i}.png"), mask * 255)
        if dem:
            cv2.imwrite(str(root / "dem" / f"t{i}.png"), (rng.random((size, size)) * 255).astype(np.uint8))  # fmt: skip
    return root


def _train(data, run_dir):
    from landslide_tf.cli.train import main

    assert main(["--data", str(data), "--run-dir", str(run_dir), *TINY]) == 0


def test_png_folder_run_predicts_a_png_tile_as_it_scores_one(tmp_path):
    from landslide_tf.cli.predict import main as predict
    from landslide_tf.data.folder import read_png_bands
    from landslide_tf.inference.predictor import Predictor

    data = _png_folder(tmp_path / "tiles")
    run = tmp_path / "run"
    _train(data, run)
    tile = data / "images" / "t3.png"
    probs = tmp_path / "p.npy"
    assert predict([str(run), "--scene", str(tile), "--out", str(probs), "--quiet"]) == 0
    # the bands as training read them (RGB order, float32), through the in-package model
    ours = Predictor.load(run).predict_batch(read_png_bands(tile)[np.newaxis])[0]
    np.testing.assert_allclose(np.load(probs), ours, atol=1e-5)
    mask = tmp_path / "m.png"
    assert predict([str(run), "--image", str(tile), "--out", str(mask), "--quiet"]) == 0
    written = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    assert written.shape == (32, 32) and set(np.unique(written)) <= {0, 255}
    # a JPEG is neither: one clear refusal naming both readable kinds
    jpeg = tmp_path / "t.jpg"
    cv2.imwrite(str(jpeg), cv2.imread(str(tile)))
    assert predict([str(run), "--scene", str(jpeg), "--out", str(probs), "--quiet"]) == 2


def test_png_folder_run_with_dem_takes_the_dem_band_from_dem(tmp_path, capsys):
    from landslide_tf.cli.predict import main as predict

    data = _png_folder(tmp_path / "tiles", dem=True)
    run = tmp_path / "run"
    _train(data, run)
    tile, dem = data / "images" / "t1.png", data / "dem" / "t1.png"
    out = tmp_path / "p.npy"
    args = [str(run), "--scene", str(tile), "--out", str(out), "--quiet"]
    assert predict(args) == 2 and "--dem" in capsys.readouterr().err
    assert not out.exists()
    assert predict([*args, "--dem", str(dem)]) == 0
    prob = np.load(out)
    assert prob.shape == (32, 32) and np.isfinite(prob).all()
