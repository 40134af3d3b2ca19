"""The data layer: every loader on the mirror, and every failure path with its message."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from assignments import data

MIRROR = os.environ.get(data.MIRROR_ENV)
needs_mirror = pytest.mark.skipif(
    not MIRROR or not Path(MIRROR, "AAPL.csv").exists(),
    reason="RNN_COURSE_DATA does not point at the course mirror",
)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No mirror, an empty cache, and downloads that fail as they do offline."""
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))

    def offline(dataset, target, timeout=30.0):
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "fetch", offline)
    return tmp_path


def accept(monkeypatch, name: str, path: Path) -> None:
    """Make ``path``'s checksum the accepted one of ``name`` (to reach the parsers)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    replaced = dataclasses.replace(data.DATASETS[name], sha256=(digest,))
    monkeypatch.setitem(data.DATASETS, name, replaced)


@needs_mirror
@pytest.mark.parametrize("split", ["train", "test"])
def test_imdb_splits_from_mirror(split):
    texts, labels = data.load_imdb(split)
    assert len(texts) == len(labels) == 25_000
    assert labels.sum() == 12_500
    assert not any("<br" in t or "\x85" in t for t in texts)


@needs_mirror
def test_imdb_order_is_stable():
    first, _ = data.load_imdb("test")
    again, _ = data.load_imdb("test")
    assert list(first[:50]) == list(again[:50])


@needs_mirror
def test_text_corpora():
    shakespeare = data.load_shakespeare()
    assert len(shakespeare) == 1_115_394 and shakespeare.startswith("First Citizen:")
    republic = data.load_republic()
    assert republic.startswith("THE REPUBLIC")
    assert "Gutenberg" not in republic[:2000] and "Gutenberg" not in republic[-2000:]
    assert "LICENSE" not in republic


@needs_mirror
def test_series():
    aapl = data.load_aapl()
    # 10,538 rows (the mirror's README says 10,537; the file has one more trading day)
    assert isinstance(aapl.index, pd.DatetimeIndex) and len(aapl) == 10_538
    assert aapl.index.is_monotonic_increasing and aapl.index.is_unique
    assert str(aapl.index[0].date()) == "1980-12-12" and str(aapl.index[-1].date()) == "2022-09-28"
    beijing = data.load_beijing()
    assert beijing.index.freqstr == "h" and beijing["pm25"].notna().all()
    assert 0.03 < beijing["pm25_missing"].mean() < 0.06
    raw = data.load_beijing(fill=False)
    assert len(raw) == 43_824 and raw["pm25"].isna().sum() == raw["pm25_missing"].sum()
    assert len(data.load_melbourne()) == 3650


def test_normalize_review():
    assert data.normalize_review("good<br /><br />fun\x85 really") == "good  fun  really"


def test_strip_gutenberg_requires_markers():
    with pytest.raises(data.DataError, match="START/END markers not found"):
        data.strip_gutenberg("no markers here")


def test_missing_file_names_every_place_and_the_fix(isolated):
    with pytest.raises(data.DataError) as caught:
        data.load_aapl(data_dir=isolated / "mirror")
    message = str(caught.value)
    assert "data set 'aapl' (AAPL.csv) not found" in message
    assert str(isolated / "mirror" / "AAPL.csv") in message
    assert str(isolated / "cache" / "AAPL.csv") in message
    assert "network unreachable" in message
    assert "rnn-course-student data fetch" in message and "RNN_COURSE_DATA" in message


def test_offline_env_skips_download(isolated, monkeypatch):
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    with pytest.raises(data.DataError) as caught:
        data.load_shakespeare()
    assert "network unreachable" not in str(caught.value)


def test_checksum_mismatch_keeps_the_file(isolated):
    mirror = isolated / "mirror"
    mirror.mkdir()
    bad = mirror / "tinyshakespeare.txt"
    bad.write_text("First Citizen: truncated")
    with pytest.raises(data.DataError, match="checksum mismatch for data set 'shakespeare'"):
        data.load_shakespeare(data_dir=mirror)
    assert bad.read_text() == "First Citizen: truncated"


def test_mirror_takes_priority_over_cache(isolated, monkeypatch):
    mirror, cache = isolated / "mirror", isolated / "cache"
    for folder, text in ((mirror, "mirror copy"), (cache, "cache copy")):
        folder.mkdir()
        (folder / "tinyshakespeare.txt").write_text(text)
    accept(monkeypatch, "shakespeare", mirror / "tinyshakespeare.txt")
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    assert data.load_shakespeare() == "mirror copy"


def test_truncated_archive_is_a_clear_error(isolated, monkeypatch):
    archive = isolated / "aclImdb_v1.tar.gz"
    archive.write_bytes(_imdb_archive({"aclImdb/train/pos/0_9.txt": "great"})[:60])
    accept(monkeypatch, "imdb", archive)
    with pytest.raises(data.DataError, match="unreadable archive"):
        data.load_imdb("train", data_dir=isolated)
    assert archive.exists()


def test_archive_with_missing_reviews_is_refused(isolated, monkeypatch):
    archive = isolated / "aclImdb_v1.tar.gz"
    archive.write_bytes(_imdb_archive({"aclImdb/train/pos/0_9.txt": "great"}))
    accept(monkeypatch, "imdb", archive)
    with pytest.raises(data.DataError, match="expected 25000 train reviews, found 1"):
        data.load_imdb("train", data_dir=isolated)


def test_official_archive_layout_is_read(isolated, monkeypatch):
    members = {
        "aclImdb/train/pos/0_9.txt": "great<br />film",
        "aclImdb/train/neg/1_2.txt": "dull",
        "aclImdb/train/unsup/2_0.txt": "unlabelled",
        "aclImdb/test/pos/3_8.txt": "not in train",
        "aclImdb/train/labeledBow.feat": "0:1",
    }
    archive = isolated / "aclImdb_v1.tar.gz"
    archive.write_bytes(_imdb_archive(members))
    accept(monkeypatch, "imdb", archive)
    monkeypatch.setattr(data, "IMDB_SPLIT_SIZE", 2)
    texts, labels = data.load_imdb("train", data_dir=isolated)
    assert list(texts) == ["dull", "great film"] and list(labels) == [0, 1]


def test_extracted_folder_is_read(isolated):
    for split, label, name, text in (
        ("train", "pos", "0_9.txt", "loved it"),
        ("train", "neg", "1_1.txt", "hated it"),
    ):
        folder = isolated / "aclImdb" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    texts, labels = data.load_imdb("train", data_dir=isolated)
    assert list(zip(texts, labels, strict=True)) == [("hated it", 0), ("loved it", 1)]
    with pytest.raises(data.DataError, match="needs test/pos and test/neg"):
        data.load_imdb("test", data_dir=isolated)


def test_bad_split_name():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        data.load_imdb("validation")


def test_unreadable_csv_is_a_clear_error(isolated, monkeypatch):
    bad = isolated / "AAPL.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage\n\x00\x00")
    accept(monkeypatch, "aapl", bad)
    with pytest.raises(data.DataError, match="AAPL.csv: unreadable CSV"):
        data.load_aapl(data_dir=isolated)


def test_csv_with_wrong_columns_is_refused(isolated, monkeypatch):
    bad = isolated / "AAPL.csv"
    bad.write_text("Date,Price\n2020-01-01,1.0\n")
    accept(monkeypatch, "aapl", bad)
    with pytest.raises(data.DataError, match="expected columns"):
        data.load_aapl(data_dir=isolated)


def test_copy_to_never_overwrites(isolated, monkeypatch):
    source, target = isolated / "mirror", isolated / "target"
    source.mkdir()
    (source / "tinyshakespeare.txt").write_text("verse")
    accept(monkeypatch, "shakespeare", source / "tinyshakespeare.txt")
    copied = data.copy_to("shakespeare", target, data_dir=source)
    assert copied.read_text() == "verse"
    copied.write_text("edited by the user")
    with pytest.raises(data.DataError, match="checksum mismatch"):
        data.copy_to("shakespeare", target, data_dir=source)
    assert copied.read_text() == "edited by the user"


def _imdb_archive(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in members.items():
            payload = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()
