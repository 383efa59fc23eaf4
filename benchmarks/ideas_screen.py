"""Screen recipe ideas on an accelerator with the Keras JAX backend (no TensorFlow needed).

Why: one strong-preset trial costs about 1.8 CPU-hours on the 2-core machine, so the ideas of
issue 21 (weight EMA, 2x working resolution, deep supervision, Lovasz fine-tuning, ensembles,
landslide-aware sampling, stronger augmentation, cheaper "fast" recipes) cannot each get a
CPU run. This script trains every idea as a variant of the strong recipe, several at once on
one GPU, under the honest protocol of ``benchmarks/real_quality.py``: train minus a selection
split, checkpoint = best selection mIoU, threshold tuned on the selection
(``landslide_tf.metrics.thresholds.tune_threshold``), the given val scored once with the
four-flip average, untouched. It uses the package's model builders, losses, metrics and
threshold rule; the input pipeline is a NumPy/OpenCV copy of the ``strong`` augmentation
(``landslide_tf.data.augment`` is TensorFlow), so its figures compare the variants with each
other, not digit for digit with the CPU trainer's records. The chosen recipe is then
trained and recorded on the CPU machine with ``benchmarks/real_quality.py``.

Ensembles are scored from the members' saved probabilities (mean probability, threshold
tuned on the selection split of the mean), so an ensemble costs the sum of its members.

Usage::

    # on the CPU machine: pack the tiles and the split lists (from real_quality's split dir)
    python benchmarks/ideas_screen.py pack ../shared/data/l4s-rgb-dev SPLIT_DIR l4s.npz
    # on the GPU machine (keras + jax): train the variants, 8 processes at a time
    KERAS_BACKEND=jax python benchmarks/ideas_screen.py run --data l4s.npz --parallel 8 \
        --variants base ema deep --deadline 480 --work /tmp/screen --results OUT

One result record (``ideas_screen`` unless ``--name``): per variant its settings, epochs, best
selection epoch, wall seconds, tuned threshold, selection F1 and the untouched-val
figures; per ensemble the same from its members.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from _protocol import list_tiles, untouched_scores  # noqa: E402
from _record import Recorder, add_results_args, save, sha256_lines  # noqa: E402

#: The strong preset (``landslide_tf.training.recipe.STRONG``) as the screen trains it.
BASE: dict[str, Any] = {
    "model": "unetpp",
    "filters": 16,
    "depth": 4,
    "dropout": 0.1,
    "epochs": 40,
    "batch": 8,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "warmup": 1,
    "loss": "bce_dice",
    "aug": "strong",
    "ema": 0.0,
    "deep": False,
    "scale": 1,
    "sampling": "uniform",
    "lovasz_epochs": 0,
    "seed": 0,
}

#: Variant name -> (what differs from BASE, one line saying what it tries).
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    # in the order they start: what a short screen must not lose comes first
    "base": ({}, "the strong preset (unetpp 16, 40 epochs, AdamW + cosine, BCE+Dice)"),
    "fast_unet26": ({"model": "unet", "epochs": 26}, "fast candidate: U-Net 16, 26 epochs"),
    "fast_pp11": ({"epochs": 11}, "fast candidate: the strong recipe in 11 epochs"),
    "ema": ({"ema": 0.99}, "+ weight EMA (momentum 0.99 per step)"),
    "scar": ({"sampling": "scar"}, "landslide-aware sampling (half the draws by scar area)"),
    "aug_plus": ({"aug": "strong_plus"}, "stronger colour/scale augmentation"),
    "scale2_unet": (
        {"model": "unet", "epochs": 26, "scale": 2},
        "2x working resolution (256 px) with U-Net 16, 26 epochs",
    ),
    "deep": ({"deep": True}, "+ deep supervision (mean of the nested decoder heads)"),
    "lovasz": ({"lovasz_epochs": 6}, "last 6 of the 40 epochs on Lovasz hinge (lr 1e-4)"),
    "base_s1": ({"seed": 1}, "the strong preset, seed 1 (seed noise; ensemble member)"),
    "unet_e40": ({"model": "unet", "epochs": 40}, "U-Net 16, 40 epochs (ensemble member)"),
    "unet_e40_s1": ({"model": "unet", "epochs": 40, "seed": 1}, "U-Net 16, 40 epochs, seed 1"),
    "pp_e33_s0": ({"epochs": 33}, "the strong recipe in 33 epochs (ensemble member)"),
    "pp_e33_s1": ({"epochs": 33, "seed": 1}, "the strong recipe in 33 epochs, seed 1"),
    "ema_deep_lovasz": (
        {"ema": 0.99, "deep": True, "lovasz_epochs": 6},
        "EMA + deep supervision + Lovasz fine-tune",
    ),
    "unet_e40_s2": ({"model": "unet", "epochs": 40, "seed": 2}, "U-Net 16, 40 epochs, seed 2"),
    "fast_unet26_lr2": (
        {"model": "unet", "epochs": 26, "lr": 0.002},
        "fast candidate: U-Net 16, 26 epochs, lr 2e-3",
    ),
    "ema_scar": ({"ema": 0.99, "sampling": "scar"}, "EMA + landslide-aware sampling"),
    "base_s2": ({"seed": 2}, "the strong preset, seed 2 (ensemble member)"),
    "scale2": ({"scale": 2}, "2x working resolution (256 px), the strong preset"),
}

#: Ensemble name -> members (scored when all members finished).
ENSEMBLES: dict[str, list[str]] = {
    "ens_base_x2": ["base", "base_s1"],
    "ens_base_x3": ["base", "base_s1", "base_s2"],
    "ens_pp33_x2": ["pp_e33_s0", "pp_e33_s1"],
    "ens_unet40_x2": ["unet_e40", "unet_e40_s1"],
    "ens_unet40_x3": ["unet_e40", "unet_e40_s1", "unet_e40_s2"],
    "ens_fast_unet_x2": ["fast_unet26", "fast_unet26_lr2"],
}

#: Augmentation policies: rotation (deg), zoom, brightness, contrast, saturation, hue.
POLICIES: dict[str, tuple[float, float, float, tuple[float, float], tuple[float, float], float]] = {
    "strong": (15.0, 0.1, 0.08, (0.85, 1.15), (0.85, 1.15), 0.02),
    "strong_plus": (30.0, 0.25, 0.15, (0.7, 1.3), (0.7, 1.3), 0.05),
}


def settings(name: str) -> dict[str, Any]:
    """BASE with the variant's changes."""
    return {**BASE, **VARIANTS[name][0]}


# ----------------------------------------------------------------------------- data


def pack(data: Path, split_dir: Path, out: Path, size: int | None = None) -> None:
    """Tiles of ``train``/``val``/``test`` lists as one compressed .npz (RGB uint8, masks bits),
    all on one grid: ``size`` px, else the first tile's."""
    import cv2
    import numpy as np

    arrays: dict[str, Any] = {}
    for key, list_name in (("train", "train"), ("sel", "val"), ("val", "test")):
        xs, ys = [], []
        tiles = list_tiles(data, split_dir, list_name)
        for _, image, mask in tiles:
            if mask is None:
                mask = np.zeros(image.shape[:2], bool)
            if size is None:
                size = image.shape[0]
            grid = (size, size)
            if image.shape[1::-1] != grid:
                image = cv2.resize(image, grid, interpolation=cv2.INTER_LINEAR)
            if mask.shape[::-1] != grid:
                mask = cv2.resize(mask.astype("uint8"), grid, interpolation=cv2.INTER_NEAREST) > 0
            xs.append(image)
            ys.append(mask)
        arrays[f"{key}_x"] = np.stack(xs)
        arrays[f"{key}_y"] = np.packbits(np.stack(ys), axis=-1)
        arrays[f"{key}_sha256"] = np.array(sha256_lines(t[0] for t in tiles))
        share = float(np.stack(ys).mean())
        print(f"{key}: {len(tiles)} tiles, landslide share {share:.4f}")
    tmp = out.with_name(f".{out.name}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, out)


def load(path: Path, limit: int | None = None) -> dict[str, Any]:
    """``{split: (x float32 [N,H,W,3] in [0,1], y uint8 [N,H,W])}`` and the list hashes."""
    import numpy as np

    raw = np.load(path)
    out: dict[str, Any] = {}
    for key in ("train", "sel", "val"):
        x = raw[f"{key}_x"][:limit]
        y = np.unpackbits(raw[f"{key}_y"][:limit], axis=-1)[..., : x.shape[2]]
        out[key] = (x.astype("float32") / 255.0, y.astype("uint8"))
        out[f"{key}_sha256"] = str(raw[f"{key}_sha256"])
    return out


def augment(x: Any, y: Any, rng: Any, policy: str) -> tuple[Any, Any]:
    """Dihedral, then rotation + zoom about the centre (reflect), then RGB colour jitter."""
    import cv2
    import numpy as np

    rot, zoom, bright, contrast, sat, hue = POLICIES[policy]
    k = int(rng.integers(8))
    x, y = np.rot90(x, k % 4), np.rot90(y, k % 4)
    if k >= 4:
        x, y = x[:, ::-1], y[:, ::-1]
    h, w = y.shape
    scale = math.exp(rng.uniform(math.log1p(-zoom), math.log1p(zoom)))
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), rng.uniform(-rot, rot), scale)
    x = cv2.warpAffine(np.ascontiguousarray(x), matrix, (w, h), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    y = cv2.warpAffine(np.ascontiguousarray(y), matrix, (w, h), flags=cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    x = x + rng.uniform(-bright, bright)
    mean = x.mean(axis=(0, 1), keepdims=True)
    x = (x - mean) * rng.uniform(*contrast) + mean
    grey = x @ np.array([0.299, 0.587, 0.114], dtype="float32")
    x = grey[..., None] + (x - grey[..., None]) * rng.uniform(*sat)
    x = np.clip(x, 0.0, 1.0).astype("float32")
    if hue:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + 360.0 * rng.uniform(-hue, hue)) % 360.0
        x = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)
    return x, y


def upsample(x: Any, y: Any | None, scale: int) -> tuple[Any, Any]:
    """Tiles ``scale`` times larger: bilinear for the image, nearest for the mask."""
    import cv2
    import numpy as np

    if scale == 1:
        return x, y
    xs = np.stack([cv2.resize(t, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
                   for t in x])  # fmt: skip
    if y is None:
        return xs, None
    ys = np.stack([cv2.resize(t, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
                   for t in y])  # fmt: skip
    return xs, ys


def epoch_order(y: Any, sampling: str, rng: Any) -> Any:
    """Tile indices for one epoch: a permutation, or half the draws weighted by scar area."""

    n = len(y)
    if sampling == "uniform":
        return rng.permutation(n)
    area = y.reshape(n, -1).mean(axis=1).astype("float64")
    p = 0.5 / n + 0.5 * area / max(area.sum(), 1e-12)
    return rng.choice(n, size=n, replace=True, p=p / p.sum())


# ----------------------------------------------------------------------------- one variant


def probabilities(model: Any, x: Any, scale: int, tta: bool) -> Any:
    """``(N, H, W)`` float32 probabilities at the tiles' own size (flip-averaged when ``tta``)."""
    import numpy as np

    from landslide_tf.inference.tta import FLIP_AXES  # the package's flips (no TensorFlow)

    xin, _ = upsample(x, None, scale)
    flips = FLIP_AXES if tta else ((),)
    total = 0.0
    for axes in flips:
        xf = np.flip(xin, axis=axes) if axes else xin
        p = np.asarray(model.predict(xf, batch_size=64, verbose=0), dtype="float32")
        total = total + (np.flip(p, axis=axes) if axes else p)
    p = (total / len(flips))[..., 0]
    if scale > 1:
        n, h, w = p.shape
        p = p.reshape(n, h // scale, scale, w // scale, scale).mean(axis=(2, 4))
    return p


def score(y: Any, p: Any, threshold: float = 0.5) -> Any:
    """``SegmentationMetrics`` over the tiles (result at ``threshold`` via ``.result``)."""
    from landslide_tf.metrics.segmentation import SegmentationMetrics

    m = SegmentationMetrics()
    m.update(y, p)
    return m


def train_one(name: str, data_path: Path, work: Path, epochs_cap: int | None,
              limit: int | None) -> dict[str, Any]:  # fmt: skip
    """Train one variant; write ``work/NAME.json`` and its selection/val probabilities."""
    import keras
    import numpy as np

    from landslide_tf.losses import get_loss
    from landslide_tf.models import build_model

    s = settings(name)
    if epochs_cap:
        s["epochs"] = min(s["epochs"], epochs_cap)
        s["lovasz_epochs"] = min(s["lovasz_epochs"], max(s["epochs"] - 1, 0))
    keras.utils.set_random_seed(s["seed"])
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    d = load(data_path, limit)
    (xt, yt), (xs, ys), (xv, yv) = d["train"], d["sel"], d["val"]
    size = xt.shape[1] * s["scale"]
    model = build_model(s["model"], input_shape=(size, size, 3), base_filters=s["filters"],
                        depth=s["depth"], dropout=s["dropout"], deep_supervision=s["deep"])  # fmt: skip
    steps = math.ceil(len(xt) / s["batch"])
    main_epochs = s["epochs"] - s["lovasz_epochs"]

    class Batches(keras.utils.PyDataset):
        def __init__(self, epoch0: int) -> None:
            super().__init__()
            self.epoch = epoch0
            self.order = self._order()

        def _order(self) -> Any:
            return epoch_order(yt, s["sampling"], np.random.default_rng([s["seed"], self.epoch]))

        def __len__(self) -> int:
            return steps

        def __getitem__(self, i: int) -> tuple[Any, Any]:
            idx = self.order[i * s["batch"] : (i + 1) * s["batch"]]
            rng = np.random.default_rng([s["seed"], self.epoch, i])
            pairs = [augment(xt[j], yt[j], rng, s["aug"]) for j in idx]
            xb, yb = upsample(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]),
                              s["scale"])  # fmt: skip
            return xb, yb[..., None].astype("float32")

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._order()

    curve: list[dict[str, float]] = []
    best: dict[str, Any] = {"miou": -1.0}
    t0 = time.time()
    stop = {"asked": False}  # SIGTERM (the driver's deadline): finish the epoch, then score
    signal.signal(signal.SIGTERM, lambda *_: stop.update(asked=True))

    class SelectEval(keras.callbacks.Callback):
        def __init__(self, offset: int) -> None:
            super().__init__()
            self.offset = offset

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            p = probabilities(self.model, xs, s["scale"], tta=False)
            r = score(ys, p).result(0.5)
            e = epoch + 1 + self.offset
            curve.append({"epoch": e, "selection_f1": round(r["f1"], 4),
                          "selection_miou": round(r["miou"], 4),
                          "wall_s": round(time.time() - t0, 1)})  # fmt: skip
            if r["miou"] > best["miou"]:
                best.update(miou=r["miou"], epoch=e, weights=self.model.get_weights())
            if stop["asked"]:
                self.model.stop_training = True
            print(f"{name} epoch {e}/{s['epochs']} loss {(logs or {}).get('loss', 0):.4f} "
                  f"selection F1 {r['f1']:.3f} mIoU {r['miou']:.3f} "
                  f"({time.time() - t0:.0f} s)", flush=True)  # fmt: skip

    def fit(loss: Any, lr: Any, epochs: int, offset: int) -> None:
        opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=s["weight_decay"],
                                     use_ema=bool(s["ema"]),
                                     ema_momentum=s["ema"] or 0.99)  # fmt: skip
        model.compile(optimizer=opt, loss=loss)
        callbacks: list[Any] = []
        if s["ema"]:
            callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        callbacks.append(SelectEval(offset))
        model.fit(Batches(offset), epochs=epochs, callbacks=callbacks, verbose=0)

    total = main_epochs * steps
    warm = min(int(s["warmup"] * steps), max(total - 1, 0))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warm else s["lr"], max(total - warm, 1), alpha=0.01,
        warmup_target=s["lr"] if warm else None, warmup_steps=warm,
    )  # fmt: skip
    fit(get_loss(s["loss"]), schedule, main_epochs, 0)
    if s["lovasz_epochs"] and not stop["asked"]:
        model.set_weights(best["weights"])  # fine-tune from the best checkpoint so far
        lov = keras.optimizers.schedules.CosineDecay(1e-4, s["lovasz_epochs"] * steps, alpha=0.1)
        fit(get_loss("lovasz_hinge"), lov, s["lovasz_epochs"], main_epochs)
    train_s = time.time() - t0
    model.set_weights(best["weights"])
    p_sel = probabilities(model, xs, s["scale"], tta=True)
    p_val = probabilities(model, xv, s["scale"], tta=True)
    np.save(work / f"{name}_sel.npy", p_sel.astype("float16"))
    np.save(work / f"{name}_val.npy", p_val.astype("float16"))
    result = scored(ys, p_sel, yv, p_val)
    result.update(
        variant=name, description=VARIANTS[name][1], settings=s, epochs=s["epochs"],
        best_epoch=best["epoch"], train_wall_s=round(train_s, 1),
        params=int(model.count_params()), curve=curve, epochs_done=len(curve),
        status="stopped at the deadline" if stop["asked"] else "trained",
    )  # fmt: skip
    (work / f"{name}.json").write_text(json.dumps(result))
    return result


def scored(ys: Any, p_sel: Any, yv: Any, p_val: Any) -> dict[str, Any]:
    """Threshold tuned on the selection probabilities; the val scored once at it."""
    out = untouched_scores(score(ys, p_sel), score(yv, p_val))
    out["plateau"] = out.pop("threshold_tuning")["plateau"]
    return out


# ----------------------------------------------------------------------------- driver


def train_all(args: argparse.Namespace, work: Path) -> tuple[list[dict[str, Any]], float]:
    """Run ``one`` per variant, ``--parallel`` at a time, killing what outlives the deadline."""
    started = time.time()
    queue = list(args.variants)
    running: dict[str, tuple[subprocess.Popen, Any]] = {}
    status: dict[str, str] = {}
    asked: dict[str, float] = {}
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1")
    while running or (queue and not (args.deadline and time.time() - started > args.deadline)):
        late = args.deadline and time.time() - started > args.deadline
        while queue and len(running) < args.parallel and not late:
            name = queue.pop(0)
            log = (work / f"{name}.log").open("w")
            cmd = [sys.executable, __file__, "one", name, "--data", str(args.data),
                   "--work", str(work)]  # fmt: skip
            if args.epochs:
                cmd += ["--epochs", str(args.epochs)]
            if args.limit:
                cmd += ["--limit", str(args.limit)]
            running[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                             log)  # fmt: skip
            print(f"started {name}", flush=True)
        time.sleep(1.0)
        for name, (proc, log) in list(running.items()):
            late = args.deadline and time.time() - started > args.deadline
            if late and proc.poll() is None and name not in asked:
                proc.terminate()  # the variant stops after its epoch and scores what it has
                asked[name] = time.time()
            if name in asked and proc.poll() is None and time.time() - asked[name] > args.grace:
                proc.kill()
            if proc.poll() is None:
                continue
            if proc.returncode == 0:
                status[name] = "trained"
            else:
                status[name] = "killed at the deadline" if name in asked else "failed"
            log.close()
            print(f"{name}: {status[name]} ({time.time() - started:.0f} s)", flush=True)
            del running[name]
    rows: list[dict[str, Any]] = []
    for name in args.variants:
        path = work / f"{name}.json"
        if status.get(name) == "trained" and path.is_file():
            rows.append(json.loads(path.read_text()))
        elif name not in status:
            rows.append({"variant": name, "description": VARIANTS[name][1],
                         "settings": settings(name), "status": "not started (deadline)"})  # fmt: skip
        else:
            tail = (work / f"{name}.log").read_text().strip().splitlines()[-3:]
            rows.append({"variant": name, "description": VARIANTS[name][1],
                         "settings": settings(name), "status": status.get(name, "failed"),
                         "log_tail": tail})  # fmt: skip
    return rows, round(time.time() - started, 1)


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Train the variants in parallel processes, score the ensembles, write the record."""
    import numpy as np

    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        print(f"error: unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}",
              file=sys.stderr)  # fmt: skip
        return 2
    if not args.data.is_file():
        print(f"error: no packed data at {args.data} (make it with: pack)", file=sys.stderr)
        return 2
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    with Recorder() as recorder:
        rows, wall = train_all(args, work)
    d = load(args.data, args.limit)
    ys, yv = d["sel"][1], d["val"][1]
    for ens, members in ENSEMBLES.items():
        done = {r["variant"] for r in rows if r.get("status") == "trained"}
        if not set(members) <= done:
            continue
        p_sel = np.mean([np.load(work / f"{m}_sel.npy").astype("float32") for m in members], 0)
        p_val = np.mean([np.load(work / f"{m}_val.npy").astype("float32") for m in members], 0)
        row = scored(ys, p_sel, yv, p_val)
        row.update(variant=ens, members=members, status="ensemble",
                   description=f"mean probability of {' + '.join(members)}")  # fmt: skip
        rows.append(row)
    print(markdown(rows))
    figures = {
        "protocol": "selection split carved from train (checkpoint, threshold); val untouched",
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "wall_s": wall,
        "parallel": args.parallel,
        "epochs_cap": args.epochs,
        "limit_tiles": args.limit,
        "rows": rows,
    }
    splits = {k: int(len(d[k][1])) for k in ("train", "sel", "val")}
    data = {"name": args.data.stem, "splits": splits,
            "split_sha256": {k: d[f"{k}_sha256"] for k in ("train", "sel", "val")}}  # fmt: skip
    save(args, Path(__file__).name, argv, figures, recorder=recorder, data=data)
    return 0 if any("val_untouched" in r for r in rows) else 1


def markdown(rows: list[dict[str, Any]]) -> str:
    """The screen as a Markdown table."""
    lines = ["| variant | epochs | best | wall s | thr | selection F1 | val F1 | P | R | mIoU |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        v = r.get("val_untouched") or {}
        lines.append(
            f"| {r['variant']} | {r.get('epochs_done', '')}/{r.get('epochs', '')} | "
            f"{r.get('best_epoch', '')} | "
            f"{r.get('train_wall_s', '')} | {r.get('threshold', r.get('status'))} | "
            f"{r.get('selection_f1', '')} | {v.get('f1', '')} | {v.get('precision', '')} | "
            f"{v.get('recall', '')} | {v.get('miou', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="pack tiles and split lists into one .npz")
    p.add_argument("data", type=Path)
    p.add_argument("split_dir", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--size", type=int, help="resample every tile to N px (default: as read)")
    r = sub.add_parser("run", help="train variants in parallel; write a record")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--variants", nargs="+", default=list(VARIANTS))
    r.add_argument("--parallel", type=int, default=4)
    r.add_argument(
        "--deadline",
        type=float,
        default=0.0,
        help="seconds after which running variants stop after their epoch and score "
        "what they have, and no new one starts; 0 = none",
    )
    r.add_argument("--grace", type=float, default=90.0, help="seconds from stop to kill")
    r.add_argument("--work", type=Path, default=Path("/tmp/ideas_screen"))
    r.add_argument("--epochs", type=int, help="cap every variant's epochs (smoke runs)")
    r.add_argument("--limit", type=int, help="first N tiles of each split (smoke runs)")
    add_results_args(r)
    o = sub.add_parser("one")
    o.add_argument("variant", choices=sorted(VARIANTS))
    o.add_argument("--data", type=Path, required=True)
    o.add_argument("--work", type=Path, required=True)
    o.add_argument("--epochs", type=int)
    o.add_argument("--limit", type=int)
    args = parser.parse_args(argv)
    if args.cmd == "pack":
        pack(args.data, args.split_dir, args.out, args.size)
        return 0
    if args.cmd == "one":
        train_one(args.variant, args.data, args.work, args.epochs, args.limit)
        return 0
    return run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
