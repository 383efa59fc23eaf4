"""A synthetic Bijie-like dataset: the project's embedded default (not a benchmark).

Each tile is a smooth terrain (valley floors and plateaus joined by steep slopes) rendered as
an 8-bit grayscale DEM (dark = low) and a vegetated RGB image. Landslide scars (irregular,
elongated downslope, bare-soil colours) are placed only on steep slopes. Look-alike bare
patches with the very same colours (fields, roads, quarries) are placed only on flat ground,
in landslide and non-landslide tiles. An RGB-only model therefore confuses scars with
look-alikes, while an RGB+DEM model can tell them apart by the terrain.

Written in the official layout: ``landslide/{image,dem,mask}`` and
``non-landslide/{image,dem}``. Tile sizes vary (``min_size..max_size``); landslide pixels
cover roughly 5-30 % of a landslide tile (mean about 13 %). Every tile is drawn from its own
generator seeded with ``(seed, kind, index)``, so the output is deterministic and a smaller
``n`` gives a prefix of a larger one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from landslide_tf.errors import UserError
from landslide_tf.files import remove_stale_staging, staged_dir

logger = logging.getLogger(__name__)

#: Bump when the generator's output changes (names the default cache folder).
VERSION = 1
#: ``synthetic.json``'s ``generator``, and the file itself: what marks a folder as a set
#: that ``synthesize`` wrote (and may replace).
GENERATOR = "landslide_tf.data.synthetic"
INFO_FILE = "synthetic.json"
#: The folders of each group, in the official layout.
FOLDERS = {"landslide": ("image", "dem", "mask"), "non-landslide": ("image", "dem")}
#: Steepness (elevation change over the tile width, per tile width) above which ground is a
#: slope where scars may occur, and below which it is flat ground for look-alikes.
STEEP = 1.6
FLAT = 0.25


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: float) -> np.ndarray:
    """Smooth noise in [0, 1] of shape ``(h, w)`` with about ``cells`` blobs across."""
    gh = max(2, int(round(cells * h / max(h, w))) + 2)
    gw = max(2, int(round(cells * w / max(h, w))) + 2)
    grid = rng.random((gh, gw)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def _terrain(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Elevation in [0, 1] ``(h, w)`` and its steepness (change per tile width)."""
    for _ in range(20):
        base = _smooth_noise(rng, h, w, rng.uniform(1.2, 2.2))
        low = rng.uniform(0.25, 0.4)
        high = low + rng.uniform(0.35, 0.55)
        t = np.clip((base - low) / (high - low), 0.0, 1.0)
        z = t * t * (3.0 - 2.0 * t)  # smoothstep: flat floors, steep flanks
        z = z + 0.04 * _smooth_noise(rng, h, w, 1.0)  # gentle undulation
        gy, gx = np.gradient(z)
        steepness = np.hypot(gx, gy) * max(h, w)
        steep_share = float((steepness > STEEP).mean())
        flat_share = float((steepness < FLAT).mean())
        if steep_share > 0.2 and flat_share > 0.2:
            break
    return z.astype(np.float32), steepness.astype(np.float32)


def _blob(
    rng: np.random.Generator,
    h: int,
    w: int,
    center: tuple[float, float],
    length: float,
    width: float,
    angle: float,
    taper: float = 0.0,
    roughness: float = 0.25,
) -> np.ndarray:
    """Irregular elongated blob (bool ``(h, w)``) along ``angle`` (radians, image axes)."""
    half_l = max(length / 2, 1.0)
    reach = half_l * 1.6 + 2  # bounding box: only this window is evaluated
    y0, y1 = max(int(center[0] - reach), 0), min(int(center[0] + reach) + 1, h)
    x0, x1 = max(int(center[1] - reach), 0), min(int(center[1] + reach) + 1, w)
    out = np.zeros((h, w), bool)
    if y1 - y0 < 2 or x1 - x0 < 2:
        return out
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dy, dx = yy - center[0], xx - center[1]
    u = dx * math.cos(angle) + dy * math.sin(angle)  # along the long axis
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    half_w = np.maximum(max(width / 2, 1.0) * (1.0 - taper * np.clip(u / half_l, -1, 1)), 0.5)
    dist = (u / half_l) ** 2 + (v / half_w) ** 2
    bh, bw = y1 - y0, x1 - x0
    wobble = roughness * (_smooth_noise(rng, bh, bw, max(bh, bw) / max(width, 4.0)) - 0.5) * 2
    out[y0:y1, x0:x1] = dist + wobble < 1.0
    return out


def _scars(
    rng: np.random.Generator, z: np.ndarray, steepness: np.ndarray, share: float
) -> np.ndarray:
    """Landslide scars covering about ``share`` of the tile, only on steep ground."""
    h, w = z.shape
    steep = steepness > STEEP
    target = share * h * w
    gy, gx = np.gradient(z)
    mask = np.zeros((h, w), bool)
    candidates = np.argwhere(steep & (steepness > np.percentile(steepness[steep], 30)))
    for _ in range(12):
        remaining = target - mask.sum()
        if remaining < 0.15 * target or len(candidates) == 0:
            break
        area = remaining * rng.uniform(0.4, 1.0) if mask.any() else target * rng.uniform(0.5, 1)
        cy, cx = candidates[rng.integers(len(candidates))]
        downhill = math.atan2(-gy[cy, cx], -gx[cy, cx])
        elong = rng.uniform(1.8, 3.2)
        width = math.sqrt(4 * area / (math.pi * elong)) * 1.15
        scar = _blob(
            rng,
            h,
            w,
            (float(cy), float(cx)),
            width * elong,
            width,
            downhill + rng.normal(0, 0.2),
            taper=rng.uniform(0.1, 0.5),
        )
        mask |= scar & steep
    return mask


def _lookalikes(rng: np.random.Generator, steepness: np.ndarray, count: int) -> np.ndarray:
    """Bare-soil look-alikes on flat ground only: quarries, fields and roads.

    Quarries are drawn with the very shape generator of the scars (elongated, tapered,
    irregular), so only the terrain tells them apart; fields and roads add variety.
    """
    h, w = steepness.shape
    flat = steepness < FLAT
    flat_idx = np.argwhere(flat)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(count):
        if len(flat_idx) == 0:
            break
        cy, cx = (float(v) for v in flat_idx[rng.integers(len(flat_idx))])
        kind = rng.choice(["field", "road", "quarry"], p=[0.2, 0.15, 0.65])
        side = math.sqrt(h * w)
        if kind == "field":
            fw, fh = rng.uniform(0.15, 0.35) * side, rng.uniform(0.1, 0.25) * side
            box = cv2.boxPoints(((cx, cy), (fw, fh), rng.uniform(0, 180)))
            cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
        elif kind == "road":
            pts = [(cx, cy)]
            angle = rng.uniform(0, 2 * math.pi)
            for _ in range(4):
                angle += rng.normal(0, 0.4)
                step = rng.uniform(0.1, 0.25) * side
                pts.append(
                    (pts[-1][0] + step * math.cos(angle), pts[-1][1] + step * math.sin(angle))
                )
            line = np.round(np.array(pts)).astype(np.int32)
            cv2.polylines(mask, [line], False, 1, thickness=int(rng.integers(3, 7)))
        else:
            area = float(np.clip(rng.lognormal(math.log(0.06), 0.5), 0.015, 0.2)) * h * w
            elong = rng.uniform(1.8, 3.2)
            width = math.sqrt(4 * area / (math.pi * elong)) * 1.15
            blob = _blob(
                rng,
                h,
                w,
                (cy, cx),
                width * elong,
                width,
                rng.uniform(0, math.pi),
                taper=rng.uniform(0.1, 0.5),
            )
            mask |= blob.astype(np.uint8)
    return (mask > 0) & flat


def _render(rng: np.random.Generator, bare_parts: list[np.ndarray], h: int, w: int) -> np.ndarray:
    """RGB uint8 ``(h, w, 3)``: textured vegetation with bare-soil patches."""
    green = np.array([rng.uniform(45, 80), rng.uniform(75, 115), rng.uniform(40, 65)], np.float32)
    shade = (_smooth_noise(rng, h, w, rng.uniform(2, 5)) - 0.5) * 40  # (h, w)
    clumps = (_smooth_noise(rng, h, w, max(h, w) / 12) > 0.6) * -18.0  # tree clumps
    fine = cv2.GaussianBlur(rng.standard_normal((h, w), np.float32) * 10, (0, 0), 1.0)
    image = green[None, None, :] + (shade + clumps + fine)[..., None]  # (h, w, 3)
    # One bare-soil colour per tile, shared by scars and look-alikes (small jitter per part).
    red = rng.uniform(140, 200)
    soil_green = red * rng.uniform(0.72, 0.88)
    soil_tile = np.array([red, soil_green, soil_green * rng.uniform(0.7, 0.85)], np.float32)
    grain = cv2.GaussianBlur(rng.standard_normal((h, w), np.float32) * 14, (0, 0), 0.8)
    texture = (grain + 0.3 * shade)[..., None]  # (h, w, 1)
    for part in bare_parts:
        if not part.any():
            continue
        soil = soil_tile + rng.normal(0, 6, 3).astype(np.float32)
        alpha = cv2.GaussianBlur(part.astype(np.float32), (0, 0), 0.8)
        alpha = np.maximum(alpha, part * np.float32(0.85))[..., None]  # (h, w, 1)
        image += alpha * (soil + texture - image)
    image += rng.standard_normal(image.shape, np.float32) * 3
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _dem_png(rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
    """Elevation in [0, 1] to an 8-bit grayscale DEM (dark = low)."""
    base = rng.uniform(10, 60)
    relief = rng.uniform(120, 255 - base)
    return np.clip(np.round(base + relief * z), 0, 255).astype(np.uint8)


def make_tile(
    rng: np.random.Generator, landslide: bool, min_size: int = 80, max_size: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic tile.

    Returns:
        ``rgb (h, w, 3)`` uint8, ``dem (h, w)`` uint8, ``mask (h, w)`` uint8 in {0, 255}
        (all zeros for non-landslide tiles).
    """
    side = rng.uniform(min_size, max_size)
    aspect = rng.uniform(0.8, 1.25)
    h = int(np.clip(round(side * math.sqrt(aspect)), min_size, max_size))
    w = int(np.clip(round(side / math.sqrt(aspect)), min_size, max_size))
    z, steepness = _terrain(rng, h, w)
    scar = np.zeros((h, w), bool)
    if landslide:
        share = float(np.clip(rng.lognormal(math.log(0.13), 0.5), 0.04, 0.3))
        scar = _scars(rng, z, steepness, share)
        fakes = _lookalikes(rng, steepness, int(rng.integers(1, 4)))
    else:
        fakes = _lookalikes(rng, steepness, int(rng.integers(2, 5)))
    fakes &= ~scar
    rgb = _render(rng, [scar, fakes], h, w)
    return rgb, _dem_png(rng, z), scar.astype(np.uint8) * 255


def _write(path: Path, array: np.ndarray) -> None:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"cannot write {path}")


def _synthetic_files(info: dict) -> set[Path]:
    """The files a synthetic set with ``info`` (its ``synthetic.json``) consists of."""
    files = {Path(INFO_FILE)}
    for group, prefix, count in (
        ("landslide", "syn", info["n"]),
        ("non-landslide", "neg", info["negatives"]),
    ):
        for i in range(count):
            files.update(Path(group, sub, f"{prefix}{i:04d}.png") for sub in FOLDERS[group])
    return files


def _check_replaceable(out: Path) -> None:
    """``UserError`` unless ``out`` is missing, an empty folder, or a synthetic set written by
    ``synthesize`` and nothing else (the folders it may replace as a whole)."""
    if out.is_symlink():  # replacing it would put a folder where the user's link was
        raise UserError(f"{out} is a symbolic link: give the folder it points to as --out")
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out} is a file, not a folder: choose another --out")
    ours: set[Path] = set()
    try:
        info = json.loads((out / INFO_FILE).read_text())
        if info["generator"] == GENERATOR:
            ours = _synthetic_files(info)
            ours |= {Path(group) for group in FOLDERS}
            ours |= {Path(group, sub) for group, subs in FOLDERS.items() for sub in subs}
    except (OSError, ValueError, TypeError, KeyError):
        pass  # no readable synthetic.json: nothing in the folder is ours
    # folders and links count too: an empty folder or a link of the user's is theirs
    found = {p.relative_to(out): p for p in out.rglob("*")}
    others = sorted(
        rel
        for rel, path in found.items()
        if rel not in ours or (path.is_symlink() and path.is_dir())
    )
    if others:
        raise UserError(
            f"{out} is not empty and holds more than a synthetic set of landslide_tf "
            f"({out / others[0]}): nothing was written; choose a new or empty folder"
        )


def synthesize(
    out_dir: str | Path,
    n: int = 24,
    seed: int = 0,
    negatives: int | None = None,
    min_size: int = 80,
    max_size: int = 300,
) -> Path:
    """Write a synthetic Bijie-like dataset in the official layout.

    The set is written into a staging folder beside ``out_dir`` that replaces it once
    complete, so a folder never mixes two sets and a failed write leaves it as it was.

    Args:
        out_dir: destination folder: new, empty, or a synthetic set written here before
            (replaced as a whole); any other folder is refused.
        n: number of landslide tiles (stems ``syn0000``...).
        seed: the whole dataset is a function of the seed.
        negatives: number of non-landslide tiles (stems ``neg0000``...); default ``n // 4``.
        min_size: smallest tile side in pixels.
        max_size: largest tile side in pixels.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: bad ``n`` or tile sizes.
        UserError: ``out_dir`` is a file, or a non-empty folder that holds anything but a
            synthetic set of this package (nothing is written or deleted).
    """
    if n < 1:
        raise ValueError(f"n={n}; expected at least one landslide tile")
    if not 16 <= min_size <= max_size:
        raise ValueError(f"tile sizes {min_size}..{max_size}; expected 16 <= min <= max")
    negatives = n // 4 if negatives is None else int(negatives)
    out = Path(out_dir)
    _check_replaceable(out)
    remove_stale_staging(out.parent, out.name)  # what a killed earlier call left
    with staged_dir(out) as stage:
        for group, subs in FOLDERS.items():
            for sub in subs:
                (stage / group / sub).mkdir(parents=True)
        for kind, group, prefix, count in (
            (0, "landslide", "syn", n),
            (1, "non-landslide", "neg", negatives),
        ):
            for i in range(count):
                rng = np.random.default_rng([seed, kind, i])
                rgb, dem, mask = make_tile(rng, kind == 0, min_size, max_size)
                stem = f"{prefix}{i:04d}"
                _write(stage / group / "image" / f"{stem}.png", rgb)
                _write(stage / group / "dem" / f"{stem}.png", dem)
                if kind == 0:
                    _write(stage / group / "mask" / f"{stem}.png", mask)
        info = {
            "generator": GENERATOR,
            "version": VERSION,
            "n": n,
            "negatives": negatives,
            "seed": seed,
            "min_size": min_size,
            "max_size": max_size,
        }
        (stage / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    logger.info("wrote %d landslide and %d non-landslide synthetic tiles to %s", n, negatives, out)
    return out


def default_data_dir() -> Path:
    """``$LANDSLIDE_TF_DATA`` or ``~/.cache/landslide_tf/synthetic-v1``."""
    env = os.environ.get("LANDSLIDE_TF_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "landslide_tf" / f"synthetic-v{VERSION}"


def ensure_default_dataset(n: int = 120, seed: int = 0) -> Path:
    """Return the default dataset folder, generating the synthetic set on first use.

    A folder that already holds ``landslide/`` is used as it is (whatever its size or
    origin). Generation writes into a temporary folder that is renamed at the end, so
    concurrent first uses do not see half-written data.
    """
    root = default_data_dir()
    if (root / "landslide").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    logger.info("generating the default synthetic dataset (%d tiles) in %s", n, root)
    try:
        synthesize(tmp, n=n, seed=seed)
        try:
            tmp.rename(root)
        except OSError:
            if not (root / "landslide").is_dir():  # not a concurrent writer: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
