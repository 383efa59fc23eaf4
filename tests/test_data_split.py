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


def _cross_split_overlaps(split, boxes) -> list[tuple[str, str]]:
    """Pairs of chips in different splits that share ground (touching edges do not count)."""
    where = {s.stem: name for name, part in split.items() for s in part}
    kept = [stem for stem in boxes if stem in where]
    return [
        (p, q)
        for i, p in enumerate(kept)
        for q in kept[i + 1 :]
        if where[p] != where[q]
        and min(boxes[p][2], boxes[q][2]) > max(boxes[p][0], boxes[q][0])
        and min(boxes[p][3], boxes[q][3]) > max(boxes[p][1], boxes[q][1])
    ]


def test_spatial_split_falls_back_to_the_overlap_buffer(caplog):
    """36 touching chips of one small scene: every one-chip-buffered split leaves train under
    a third of its share, so only chips that overlap another split are left out (none here)."""
    import logging

    from landslide_tf.data.split import spatial_split

    samples, boxes = _grid(6)
    with caplog.at_level(logging.INFO, logger="landslide_tf.data.split"):
        split = spatial_split(samples, boxes, seed=0)
    assert "a one-chip buffer: no block width" in caplog.text
    assert "train at most 7 of 36 chips" in caplog.text  # a split existed, and was refused
    assert "leaving out only overlapping chips: train" in caplog.text
    assert all(split.values()) and sum(len(v) for v in split.values()) == 36


def test_default_chips_of_a_2048_scene_get_a_split_without_shared_ground(caplog):
    """``data chip`` defaults (256 px every 128 px) on a 2048 x 2048 scene: the one-chip buffer
    eats train, and the random split used before put 45 of 45 test chips on train ground."""
    import logging

    from landslide_tf.data.chip import starts
    from landslide_tf.data.split import spatial_split

    samples, boxes = [], {}
    for r in starts(2048, 256, 128):
        for c in starts(2048, 256, 128):
            samples.append(Sample(f"r{r:05d}_c{c:05d}", Path("x.tif"), None, None, False))
            boxes[samples[-1].stem] = (c, -(r + 256), c + 256, -r)
    with caplog.at_level(logging.INFO, logger="landslide_tf.data.split"):
        split = spatial_split(samples, list(boxes.values()), seed=42)
    assert "leaving out only overlapping chips" in caplog.text
    sizes = {k: len(v) for k, v in split.items()}
    assert all(sizes.values()) and sizes["train"] >= 0.64 * len(samples) / 3, sizes
    assert _cross_split_overlaps(split, boxes) == []


def test_overlapping_chips_too_few_for_a_spatial_split_are_an_error():
    from landslide_tf.data.split import spatial_split

    samples, boxes = _grid(3, stride=0.5)  # 9 half-overlapping chips
    with pytest.raises(DataError, match="overlap on the ground") as exc:
        spatial_split(samples, boxes, seed=0)
    assert "--stride equal to --size" in str(exc.value) and "\n" not in str(exc.value)


def _fake_footprints(monkeypatch, samples, boxes):
    from landslide_tf.data import folder

    by_image = {s.image: ("EPSG:32633", box) for s, box in zip(samples, boxes, strict=True)}
    monkeypatch.setattr(folder, "footprint", lambda path: by_image[path])


def test_folder_chips_apart_but_too_few_get_the_random_split(monkeypatch, caplog):
    """Chips that share no ground (touching at most) and are too few to block: the seeded
    random split, with a warning that says none overlap."""
    import logging

    from landslide_tf.data.formats import plan_splits

    samples, boxes = _grid(2)  # 4 touching chips
    _fake_footprints(monkeypatch, samples, boxes)
    with caplog.at_level(logging.WARNING, logger="landslide_tf.data.formats"):
        split = plan_splits("folder", samples, seed=3)
    assert split == make_split(samples, seed=3)
    assert "none of them overlap another, so a seeded random split is used" in caplog.text


def test_folder_overlapping_chips_too_few_are_refused_before_writing(monkeypatch, tmp_path):
    from landslide_tf.data.formats import plan_splits

    samples, boxes = _grid(3, stride=0.5)
    _fake_footprints(monkeypatch, samples, boxes)
    with pytest.raises(DataError, match="re-chip with --stride equal to --size"):
        plan_splits("folder", samples, seed=0, out_dir=tmp_path / "split")
    assert not (tmp_path / "split").exists()


# ------------------------------------------------------------------ writing the split files
def test_a_split_with_an_empty_part_is_not_written(tmp_path):
    with pytest.raises(DataError, match="the val split would be empty") as exc:
        make_split(_samples(2, 0), seed=0, out_dir=tmp_path / "split")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "split").exists() or not any((tmp_path / "split").iterdir())


def test_train_writes_no_split_files_when_a_split_is_empty(tmp_path):
    """Two tiles and --split-dir D: the run stops, and D gets no lists that a later run
    with more tiles would reuse (those would leave the new tiles out and stop again)."""
    from landslide_tf.data import synthesize
    from landslide_tf.errors import UserError
    from landslide_tf.training.config import TrainConfig
    from landslide_tf.training.fit import prepare_splits, write_planned_split

    root = synthesize(tmp_path / "data", n=2, negatives=0, min_size=32, max_size=40)
    lists = tmp_path / "lists"
    config = TrainConfig(data=str(root), split_dir=str(lists), batch_size=1)
    with pytest.raises(UserError, match="the val split is empty"):
        prepare_splits(config, root, tmp_path / "run")
    assert not lists.exists() or not any(lists.iterdir())
    synthesize(root, n=30, negatives=0, min_size=32, max_size=40)  # the user adds tiles
    splits, _, _, plan = prepare_splits(config, root, tmp_path / "run")
    assert not lists.exists() or not any(lists.iterdir())  # written once the run's checks pass
    write_planned_split(config, tmp_path / "run", plan)
    assert sum(len(v) for v in splits.values()) == 30
    assert sorted(p.name for p in lists.iterdir()) == ["test.txt", "train.txt", "val.txt"]


@pytest.mark.parametrize("failing", [1, 2, 3])
def test_a_failed_write_leaves_no_set_that_reads_as_valid(tmp_path, monkeypatch, failing):
    """The lists are moved into place as a set: a failure after any of them (here: the
    ``failing``-th move) never leaves train.txt + val.txt that read as lists without test."""
    import os

    from landslide_tf import files
    from landslide_tf.data.split import given_split_files, write_split

    samples = _samples(20, 5)
    split = make_split(samples, seed=0)
    moves = []
    real_replace = os.replace

    def replace(src, dst):
        moves.append(Path(dst).name)
        if len(moves) == failing:
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(OSError):
        write_split(tmp_path, split)
    monkeypatch.undo()
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]  # no temporary left
    try:
        given = given_split_files(tmp_path)
    except DataError:  # test.txt + val.txt: a partial set is refused, not read
        assert sorted(p.name for p in tmp_path.iterdir()) == ["test.txt", "val.txt"]
    else:
        assert given is None  # no set (at most test.txt): the next run makes a new split
        assert make_split(samples, seed=0, out_dir=tmp_path) == split


def test_split_files_with_a_byte_order_mark_are_read(tmp_path):
    """Lists saved by an editor that writes a UTF-8 byte-order mark (Windows Notepad)."""
    samples = _samples(10, 0)
    stems = [s.stem for s in samples]
    for name, part in (("train", stems[:6]), ("val", stems[6:8]), ("test", stems[8:])):
        (tmp_path / f"{name}.txt").write_text("\ufeff" + "\n".join(part) + "\n", "utf-8")
    split = make_split(samples, out_dir=tmp_path)
    assert {k: [s.stem for s in v] for k, v in split.items()} == {
        "train": stems[:6],
        "val": stems[6:8],
        "test": stems[8:],
    }


def test_a_lone_test_list_with_other_tiles_is_never_overwritten(tmp_path):
    """A folder with only test.txt (someone's held-out tiles) gets no new split over it
    unless the new split's test tiles are the same ones (a list this seed wrote before)."""
    samples = _samples(20, 5)
    theirs = "".join(f"{s.stem}\n" for s in samples[:3])
    (tmp_path / "test.txt").write_text(theirs)
    with pytest.raises(DataError, match="no train.txt and val.txt beside it") as exc:
        make_split(samples, seed=0, out_dir=tmp_path)
    assert "\n" not in str(exc.value)
    assert (tmp_path / "test.txt").read_text() == theirs  # kept, and nothing else written
    assert [p.name for p in tmp_path.iterdir()] == ["test.txt"]

    ours = make_split(samples, seed=0)  # the same seed's own test list is replaced
    (tmp_path / "test.txt").write_text("".join(f"{s.stem}\n" for s in reversed(ours["test"])))
    assert make_split(samples, seed=0, out_dir=tmp_path) == ours
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.txt", "train.txt", "val.txt"]


def test_train_refuses_a_lone_foreign_test_list_before_writing(tmp_path):
    """``prepare_splits`` refuses the new split at once, so the run leaves nothing behind."""
    from landslide_tf.data import synthesize
    from landslide_tf.training.config import TrainConfig
    from landslide_tf.training.fit import prepare_splits

    root = synthesize(tmp_path / "data", n=12, negatives=0, min_size=32, max_size=40)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "test.txt").write_text("somewhere_else_001\n")
    config = TrainConfig(data=str(root), split_dir=str(lists), batch_size=1)
    with pytest.raises(DataError, match="lists 1 tile"):
        prepare_splits(config, root, tmp_path / "run")
    assert [p.name for p in lists.iterdir()] == ["test.txt"]


def test_a_dataset_shipping_its_own_lists_is_noted_by_check_and_train(synth_dir, tmp_path, caplog):
    """A published split (train.txt + val.txt at the dataset root, as l4s-rgb-dev ships)
    that train would not use without --split-dir is said, by data check and by train; not
    when --split-dir names lists (that folder or any other)."""
    import logging
    import shutil

    from landslide_tf.data.check import check_dataset
    from landslide_tf.training.config import TrainConfig
    from landslide_tf.training.fit import prepare_splits

    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    stems = sorted(p.stem for p in (data / "landslide" / "image").glob("*.png"))
    assert not any("ships its own" in n for n in check_dataset(data).notes)
    (data / "train.txt").write_text("".join(f"{s}\n" for s in stems[:16]))
    (data / "val.txt").write_text("".join(f"{s}\n" for s in stems[16:]))
    notes = check_dataset(data).notes
    assert any("ships its own train.txt and val.txt" in n and f"--split-dir {data}" in n for n in notes)  # fmt: skip
    assert not any("ships its own" in n for n in check_dataset(data, split_dir=data).notes)
    config = TrainConfig(model="unet", data=str(data), image_size=32, batch_size=2)
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="landslide_tf.training.fit"):
        prepare_splits(config, data, run)
    assert any("ships its own" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="landslide_tf.training.fit"):
        splits = prepare_splits(TrainConfig(**{**config.to_dict(), "split_dir": str(data)}), data, run)[0]  # fmt: skip
    assert not any("ships its own" in r.getMessage() for r in caplog.records)
    assert [s.stem for s in splits["val"]] == stems[16:]
    assert not run.exists()  # prepare_splits writes nothing
