"""Tests for the seeded, stratified 64/16/20 split and its stem files."""

from pathlib import Path

import pytest

from landslide_tf.data import Sample, make_split
from landslide_tf.errors import DataError


def _samples(n_pos: int = 100, n_neg: int = 25) -> list[Sample]:
    pos = [
        Sample(f"ls{i:03d}", Path(f"i/ls{i:03d}.png"), None, Path("m.png"), True)
        for i in range(n_pos)
    ]
    neg = [Sample(f"ng{i:03d}", Path(f"i/ng{i:03d}.png"), None, None, False) for i in range(n_neg)]
    return pos + neg


def test_fractions_and_stratification():
    split = make_split(_samples(), seed=1)
    counts = {
        k: (sum(s.landslide for s in v), sum(not s.landslide for s in v)) for k, v in split.items()
    }
    assert counts == {"train": (64, 16), "val": (16, 4), "test": (20, 5)}


def test_partition_without_overlap():
    samples = _samples(37, 11)
    split = make_split(samples, seed=3)
    stems = [s.stem for part in split.values() for s in part]
    assert len(stems) == len(set(stems)) == len(samples)
    assert all(part == sorted(part, key=lambda s: s.stem) for part in split.values())


def test_deterministic_for_a_seed():
    a = make_split(_samples(), seed=7)
    b = make_split(list(reversed(_samples())), seed=7)  # input order does not matter
    c = make_split(_samples(), seed=8)
    assert a == b
    assert a["test"] != c["test"]


def test_files_written_and_reused(tmp_path):
    samples = _samples(20, 5)
    first = make_split(samples, seed=0, out_dir=tmp_path)
    lines = (tmp_path / "test.txt").read_text().splitlines()
    assert lines == [s.stem for s in first["test"]]
    # A hand-edited split is reused as is, whatever the seed.
    (tmp_path / "train.txt").write_text("\n".join(s.stem for s in samples[:-2]) + "\n")
    (tmp_path / "val.txt").write_text(samples[-2].stem + "\n")
    (tmp_path / "test.txt").write_text(samples[-1].stem + "\n")
    again = make_split(samples, seed=123, out_dir=tmp_path)
    assert [s.stem for s in again["test"]] == [samples[-1].stem]
    assert len(again["train"]) == 23


def test_unknown_stems_are_an_error(tmp_path):
    samples = _samples(10, 0)
    make_split(samples, seed=0, out_dir=tmp_path)
    with (tmp_path / "val.txt").open("a") as handle:
        handle.write("zz999\n")
    with pytest.raises(DataError) as exc:
        make_split(samples, out_dir=tmp_path)
    assert "val.txt" in str(exc.value) and "zz999" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_stem_in_two_files_is_an_error(tmp_path):
    samples = _samples(10, 0)
    split = make_split(samples, seed=0, out_dir=tmp_path)
    with (tmp_path / "test.txt").open("a") as handle:
        handle.write(split["train"][0].stem + "\n")
    with pytest.raises(DataError, match="also in train.txt"):
        make_split(samples, out_dir=tmp_path)


def test_bad_fractions():
    with pytest.raises(DataError, match="fractions"):
        make_split(_samples(), fractions=(0.5, 0.2, 0.2))


def test_shared_stem_stays_in_one_split():
    pos = [Sample(f"s{i}", Path("a.png"), None, Path("m.png"), True) for i in range(10)]
    neg = [Sample(f"s{i}", Path("b.png"), None, None, False) for i in range(5)]
    split = make_split(pos + neg, seed=0)
    where = {}
    for name, part in split.items():
        for s in part:
            where.setdefault(s.stem, set()).add(name)
    assert all(len(v) == 1 for v in where.values())
    assert sum(len(v) for v in split.values()) == 15


def test_split_of_real_dataset_files(synth_dir, tmp_path):
    from landslide_tf.data import find_samples

    samples = find_samples(synth_dir, negatives="on")
    split = make_split(samples, seed=42, out_dir=tmp_path)
    assert {k: len(v) for k, v in split.items()} == {"train": 19, "val": 5, "test": 6}
    assert make_split(find_samples(synth_dir, negatives="on"), out_dir=tmp_path) == split


# --------------------------------------------------------------------- issue 12: given lists
def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_given_train_and_val_lists_without_test_are_read_not_written(tmp_path):
    samples = _samples(20, 0)
    given = tmp_path / "given"
    given.mkdir()
    (given / "train.txt").write_text("".join(f"ls{i:03d}\n" for i in range(12)))
    (given / "val.txt").write_text("".join(f"ls{i:03d}\n" for i in range(12, 16)))
    before = _snapshot(given)
    given.chmod(0o555)  # read-only like shared data (root ignores it: the snapshot decides)
    try:
        split = make_split(samples, seed=1, out_dir=given)
    finally:
        given.chmod(0o755)
    assert [s.stem for s in split["train"]] == [f"ls{i:03d}" for i in range(12)]
    assert [s.stem for s in split["val"]] == [f"ls{i:03d}" for i in range(12, 16)]
    assert split["test"] == []
    assert _snapshot(given) == before


def test_only_one_given_list_is_an_error(tmp_path):
    (tmp_path / "train.txt").write_text("ls000\n")
    with pytest.raises(DataError, match="has train.txt but no val.txt"):
        make_split(_samples(5, 0), out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.txt"]


def _grid(n: int, stride: float = 1.0) -> tuple[list[Sample], list[tuple[float, ...]]]:
    """An ``n`` x ``n`` grid of unit chips, ``stride`` apart (0.5: half-overlapping)."""
    samples, boxes = [], []
    for r in range(n):
        for c in range(n):
            stem = f"c{r:03d}_{c:03d}"
            samples.append(Sample(stem, Path(f"{stem}.tif"), None, None, False))
            boxes.append((c * stride, r * stride, c * stride + 1.0, r * stride + 1.0))
    return samples, boxes


def test_spatial_split_keeps_a_one_chip_buffer_between_splits():
    from landslide_tf.data.split import spatial_split

    samples, boxes = _grid(40)
    split = spatial_split(samples, boxes, seed=0)
    box = dict(zip((s.stem for s in samples), boxes, strict=True))
    sizes = {k: len(v) for k, v in split.items()}
    assert all(sizes.values()) and sizes["train"] > sizes["val"] + sizes["test"]
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        for s in split[a]:
            for t in split[b]:
                p, q = box[s.stem], box[t.stem]
                gap = max(max(p[0], q[0]) - min(p[2], q[2]), max(p[1], q[1]) - min(p[3], q[3]))
                assert gap >= 1.0, (s.stem, t.stem)


def test_spatial_split_gives_up_when_the_buffer_would_eat_train(caplog):
    """36 chips of one small scene: three splits exist, but every buffered one leaves train
    under a third of its share, so the caller's random split (with its warning) is used."""
    import logging

    from landslide_tf.data.split import spatial_split

    samples, boxes = _grid(6)
    with caplog.at_level(logging.INFO, logger="landslide_tf.data.split"):
        assert spatial_split(samples, boxes, seed=0) is None
    assert "would leave train 7 of 36 chips" in caplog.text  # a split existed, and was refused
