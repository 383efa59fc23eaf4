"""Class activation maps (GradCAM and friends) for the segmentation models.

Built on tf-keras-vis 0.8.7, which runs on Keras 3 without tf-keras. A segmentation model has
no class logit, so the explained *score* of one tile is the mean landslide probability over a
target region of that tile:

- ``target="predicted"`` (default): the pixels the model calls landslide (``p >= threshold``),
  falling back to the whole tile when the model predicts none;
- ``target="truth"``: the true landslide mask (needs ``mask``; an empty mask falls back to the
  whole tile);
- ``target="all"``: every pixel.

Methods: ``gradcam``, ``gradcam++``, ``layercam`` (gradient based) and ``scorecam``
(gradient free). ScoreCAM applies a softmax to the model output before scoring, which on a
single sigmoid channel is the constant 1, so every channel gets the same weight (a known
tf-keras-vis limitation). Here ScoreCAM therefore explains a per-image two-class head wrapped
around the model, ``[log(1 - m), log(m)]`` with ``m`` the mean probability over the target
region: its softmax is exactly ``[1 - m, m]`` and the score is ``m``.

The explained layer defaults to ``landslide_tf.models.default_gradcam_layer(model)``; any layer
with a ``(N, h, w, c)`` output can be named. The user's model is never modified: gradient
methods build a new functional model over the same layers (``clone=True`` when the
``ReplaceToLinear`` modifier is used, ``linear=True``), ScoreCAM wraps the model in a new one.

``cam_energy_inside(cam, mask)`` is the number reported beside the pictures: the share of the
CAM's total energy (sum of the map) that falls inside the true landslide region. A map that
ignores the landslide scores about the mask's area share; a map that looks at the landslide
scores more.

Command line::

    python -m landslide_tf.gradcam RUN_DIR --data DIR --out OUT [--layer NAME]
        [--method gradcam|gradcam++|layercam|scorecam] [--target predicted|truth|all] [--n K]

writes ``OUT/<stem>.png`` (image, DEM when present, truth, prediction, heat map over the
image) per tile, ``OUT/grid.png``, and ``OUT/energy.json`` + ``OUT/energy.csv``.

The code is split by responsibility: ``targets.py`` (explainable layers, target regions, CAM
energy), ``cam.py`` (the tf-keras-vis wrappers, ``compute_cam``), ``figures.py`` (overlays and
grids) and ``explain.py`` (``explain_run``, the maps of a run directory); the command line is
``landslide_tf.cli.gradcam``. Import names from those modules.
"""
