"""Course data sets: download with checksums, or read from a local mirror.

Every data set is one file with a known public address and the SHA-256 of each
version the course accepts. A file is looked for, in this order, in

1. the ``data_dir`` argument of a loader,
2. the directory named by the ``RNN_COURSE_DATA`` environment variable (a local
   mirror, e.g. ``../shared/data``),
3. the download cache ``RNN_COURSE_CACHE`` (default ``~/.cache/rnn-course``),

and downloaded into the cache only when none of them has it (never when
``RNN_COURSE_OFFLINE=1``). A file whose
checksum does not match is an error, never a silent partial load, and a
user's file is never deleted or overwritten.

Text normalisation: IMDB reviews contain ``<br />`` tags and the control
character U+0085 (a Windows ellipsis). Both become spaces in
:func:`normalize_review`, which :func:`load_imdb` applies; a model trained
on normalised text must be fed normalised text (the grader does the same).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIRROR_ENV = "RNN_COURSE_DATA"
CACHE_ENV = "RNN_COURSE_CACHE"
OFFLINE_ENV = "RNN_COURSE_OFFLINE"
VIEW_SUFFIX = ".view.json"
FIX_COMMAND = (
    "run `rnn-course-student data fetch` where the network is reachable, or point the course "
    "at a local mirror: `export RNN_COURSE_DATA=DIR` (DIR holding the file, e.g. ../shared/data)"
)


class DataError(RuntimeError):
    """A data set is missing, corrupt or unreadable; the message says what to do."""


@dataclass(frozen=True)
class DataSet:
    """One downloadable file and the checksums of the versions accepted."""

    name: str
    filename: str
    url: str
    sha256: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    description: str = ""

    @property
    def filenames(self) -> tuple[str, ...]:
        return (self.filename, *self.aliases)


DATASETS: dict[str, DataSet] = {
    d.name: d
    for d in (
        DataSet(
            "imdb",
            "aclImdb_v1_labeled.tar.gz",
            "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
            (
                # labelled-only archive of the course mirror
                "29fcebca944d6f1cc70d2d260605742d196b853b4650a975fccc61100ef5f995",
                # official 84 MB archive
                "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
            ),
            aliases=("aclImdb_v1.tar.gz",),
            description="Large Movie Review Dataset v1.0, 25k train + 25k test reviews",
        ),
        DataSet(
            "shakespeare",
            "tinyshakespeare.txt",
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            ("86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",),
            aliases=("input.txt",),
            description="Tiny Shakespeare, 1,115,394 characters",
        ),
        DataSet(
            "republic",
            "plato_republic_gutenberg1497.txt",
            "https://www.gutenberg.org/cache/epub/1497/pg1497.txt",
            ("fd025e38db153a7223aa0e6f1eb85076280784d13bcc4807bfa3b3f79858bed6",),
            description="Plato, The Republic (tr. Jowett), Project Gutenberg #1497",
        ),
        DataSet(
            "aapl",
            "AAPL.csv",
            "https://query1.finance.yahoo.com/v7/finance/download/AAPL"
            "?period1=345427200&period2=1664409600&interval=1d",
            ("efadb1bc48e89e4bb9edf42c75647759544c4169d1f169c613b89d069b6855df",),
            description="Apple daily prices 1980-12-12 .. 2022-09-28",
        ),
        DataSet(
            "beijing",
            "beijing_pm25_weather.csv",
            "https://archive.ics.uci.edu/ml/machine-learning-databases/00381/PRSA_data_2010.1.1-2014.12.31.csv",
            ("892e9559205d16d32623135c127a3951c12e46ea1e0b3093e107ce89a9fd60e2",),
            aliases=("PRSA_data_2010.1.1-2014.12.31.csv",),
            description="Beijing PM2.5 and hourly weather 2010-2014",
        ),
        DataSet(
            "melbourne",
            "melbourne_daily_min_temperatures.csv",
            "https://raw.githubusercontent.com/jbrownlee/Datasets/master/daily-min-temperatures.csv",
            ("8b9de63ed6789492bf497625e7f9beb96a63d367b4b0a21754006f749fa5e5da",),
            aliases=("daily-min-temperatures.csv",),
            description="Melbourne daily minimum temperature 1981-1990",
        ),
    )
}


def cache_dir() -> Path:
    """The download cache (``RNN_COURSE_CACHE`` or ``~/.cache/rnn-course``)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "rnn-course")


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories a file is looked for in, highest priority first."""
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get(MIRROR_ENV):
        dirs.append(Path(os.environ[MIRROR_ENV]))
    dirs.append(cache_dir())
    return dirs


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def view_manifest(path: Path) -> Path:
    """The manifest that marks ``path`` as a course view of a data set (see :func:`check_file`)."""
    return path.with_name(path.name + VIEW_SUFFIX)


def check_file(dataset: DataSet, path: Path) -> None:
    """Raise :class:`DataError` unless ``path`` has an accepted checksum.

    When the grader runs a notebook it may give it a *course view* of a data set: the
    file with a part held out for grading (e.g. the tail of a corpus, the last years
    of a series), beside a manifest ``<file>.view.json`` naming the view's SHA-256.
    A view is accepted when its checksum is the one its manifest names.
    """
    actual = sha256_of(path)
    manifest = view_manifest(path)
    if manifest.is_file():
        try:
            claimed = json.loads(manifest.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise DataError(f"{manifest}: unreadable view manifest ({err})") from err
        if claimed.get("dataset") == dataset.name and claimed.get("sha256") == actual:
            return
        raise DataError(f"{path}: does not match its view manifest {manifest.name}")
    if actual not in dataset.sha256:
        raise DataError(
            f"{path}: checksum mismatch for data set '{dataset.name}' "
            f"(sha256 {actual}, expected one of {', '.join(dataset.sha256)}). "
            "The file is corrupt, truncated or a different version; it was left in place. "
            f"Replace it with a good copy from {dataset.url}."
        )


def locate(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Path of the verified file of data set ``name``, downloading it if needed."""
    dataset = DATASETS[name]
    looked = []
    for directory in search_dirs(data_dir):
        for filename in dataset.filenames:
            candidate = directory / filename
            looked.append(str(candidate))
            if candidate.is_file():
                check_file(dataset, candidate)
                return candidate
    if download and os.environ.get(OFFLINE_ENV) != "1":
        target = cache_dir() / dataset.filename
        try:
            return fetch(dataset, target)
        except OSError as err:
            looked.append(f"{dataset.url} ({err})")
    raise DataError(
        f"data set '{name}' ({dataset.filename}) not found. Looked in:\n  "
        + "\n  ".join(looked)
        + f"\nFix: {FIX_COMMAND}"
    )


def fetch(dataset: DataSet, target: Path, timeout: float = 30.0) -> Path:
    """Download ``dataset`` to ``target`` through a temporary file, checking its checksum."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with (
        urllib.request.urlopen(dataset.url, timeout=timeout) as response,
        open(partial, "wb") as out,
    ):
        while block := response.read(1 << 20):
            out.write(block)
    try:
        check_file(dataset, partial)
    except DataError:
        partial.unlink()
        raise
    partial.replace(target)
    return target


def copy_to(name: str, target_dir: Path, data_dir: str | os.PathLike | None = None) -> Path:
    """Put the verified file of ``name`` into ``target_dir``, never overwriting a file there."""
    source = locate(name, data_dir)
    target = target_dir / DATASETS[name].filename
    if target.exists():
        check_file(DATASETS[name], target)
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    shutil.copyfile(source, partial)
    partial.replace(target)
    return target


# --------------------------------------------------------------------------- IMDB

IMDB_SPLIT_SIZE = 25_000
_BREAKS = re.compile(r"<br\s*/?>|[\x85\u2028\u2029\r\n\t\v\f]")


def normalize_review(text: str) -> str:
    """Replace HTML line breaks and Unicode line separators with spaces."""
    return _BREAKS.sub(" ", text)


def imdb_member_pattern(split: str) -> re.Pattern:
    """Matches the archive names of the reviews of ``split`` (``aclImdb/<split>/<pos|neg>/``)."""
    return re.compile(rf"(?:^|/)aclImdb/{split}/(pos|neg)/\d+_\d+\.txt$")


def load_imdb(
    split: str = "train", data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reviews and labels (1 = positive) of the ``train`` or ``test`` split.

    Reads the aclImdb archive (the official one or the labelled-only mirror), or an
    extracted ``aclImdb/`` folder found in ``data_dir`` or the mirror. Texts are
    normalised with :func:`normalize_review`; order is sorted by file name, so it is
    the same on every machine.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    folder = _find_imdb_folder(data_dir)
    items = _read_imdb_folder(folder, split) if folder else _read_imdb_archive(split, data_dir)
    items.sort()
    texts = np.array([normalize_review(text) for _, text, _ in items], dtype=object)
    labels = np.array([label for _, _, label in items], dtype=np.int64)
    return texts, labels


def _find_imdb_folder(data_dir) -> Path | None:
    for directory in search_dirs(data_dir)[:-1]:
        if (directory / "aclImdb" / "train").is_dir():
            return directory / "aclImdb"
    return None


def _read_imdb_folder(folder: Path, split: str) -> list[tuple[str, str, int]]:
    items = []
    for label_name, label in (("neg", 0), ("pos", 1)):
        sub = folder / split / label_name
        if not sub.is_dir():
            raise DataError(
                f"{sub}: missing; an extracted aclImdb folder needs {split}/pos and {split}/neg"
            )
        for path in sub.glob("*.txt"):
            items.append((f"{split}/{label_name}/{path.name}", path.read_text("utf-8"), label))
    if not items:
        raise DataError(f"{folder / split}: no reviews found")
    return items


def _read_imdb_archive(split: str, data_dir) -> list[tuple[str, str, int]]:
    path = locate("imdb", data_dir)
    pattern = imdb_member_pattern(split)
    items = []
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                match = pattern.search(member.name)
                if match and member.isfile():
                    text = archive.extractfile(member).read().decode("utf-8")
                    items.append((member.name, text, int(match.group(1) == "pos")))
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"{path}: unreadable archive ({err}); replace it with a good copy") from err
    if len(items) != IMDB_SPLIT_SIZE:
        raise DataError(f"{path}: expected {IMDB_SPLIT_SIZE} {split} reviews, found {len(items)}")
    return items


# --------------------------------------------------------------------------- text corpora

_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M)
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.M)


def strip_gutenberg(text: str) -> str:
    """The body of a Project Gutenberg text, without its header and licence."""
    start, end = _GUTENBERG_START.search(text), _GUTENBERG_END.search(text)
    if not start or not end or end.start() < start.end():
        raise DataError("not a Project Gutenberg text: START/END markers not found")
    body = text[start.end() : end.start()].strip()
    body = re.sub(r"\A(Produced by[^\n]*\n)", "", body)
    body = re.sub(r"\n[^\n]*End of (the )?Project Gutenberg[^\n]*\Z", "", body, flags=re.I)
    return body.strip() + "\n"


def _read_text(name: str, data_dir) -> str:
    path = locate(name, data_dir)
    try:
        return path.read_text("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err})") from err


def load_shakespeare(data_dir: str | os.PathLike | None = None) -> str:
    """Tiny Shakespeare as one string."""
    return _read_text("shakespeare", data_dir)


def load_republic(data_dir: str | os.PathLike | None = None) -> str:
    """Plato's *Republic* with the Project Gutenberg header and licence removed."""
    return strip_gutenberg(_read_text("republic", data_dir))


# --------------------------------------------------------------------------- series


def _read_csv(name: str, data_dir, **kwargs):
    import pandas as pd

    path = locate(name, data_dir)
    try:
        return pd.read_csv(path, **kwargs)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: unreadable CSV ({err})") from err


def load_aapl(data_dir: str | os.PathLike | None = None):
    """AAPL daily prices: columns Open, High, Low, Close, Adj Close, Volume; DatetimeIndex ``Date``.

    The series has no missing trading days; rows with a missing value (none in the
    mirror) are an error rather than being filled.
    """
    frame = _read_csv("aapl", data_dir, parse_dates=["Date"], index_col="Date")
    expected = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    if list(frame.columns) != expected or frame.isna().any().any():
        raise DataError(f"AAPL.csv: expected columns {expected} with no missing values")
    if not frame.index.is_unique:
        raise DataError("AAPL.csv: a trading day appears twice")
    return frame.sort_index()


def load_beijing(data_dir: str | os.PathLike | None = None, fill: bool = True):
    """Beijing hourly PM2.5 and weather with an hourly DatetimeIndex.

    Columns: ``pm25, dew_point, temperature, pressure, wind_dir, wind_speed,
    snow_hours, rain_hours`` and ``pm25_missing`` (True where the raw value was NA,
    about 4.7% of hours). With ``fill`` (the default) missing PM2.5 values are
    interpolated linearly in time and the leading hours before the first reading are
    dropped; with ``fill=False`` they stay NaN.
    """
    import pandas as pd

    raw = _read_csv("beijing", data_dir, na_values=["NA"])
    try:
        index = pd.to_datetime(raw[["year", "month", "day", "hour"]])
    except (KeyError, ValueError) as err:
        raise DataError(f"beijing_pm25_weather.csv: bad date columns ({err})") from err
    frame = pd.DataFrame(
        {
            "pm25": raw["pm2.5"].to_numpy(dtype=float),
            "dew_point": raw["DEWP"].to_numpy(dtype=float),
            "temperature": raw["TEMP"].to_numpy(dtype=float),
            "pressure": raw["PRES"].to_numpy(dtype=float),
            "wind_dir": raw["cbwd"].to_numpy(),
            "wind_speed": raw["Iws"].to_numpy(dtype=float),
            "snow_hours": raw["Is"].to_numpy(dtype=float),
            "rain_hours": raw["Ir"].to_numpy(dtype=float),
        },
        index=pd.DatetimeIndex(index, name="time", freq="h"),
    )
    frame["pm25_missing"] = frame["pm25"].isna()
    if fill:
        frame = frame.loc[frame["pm25"].first_valid_index() :].copy()
        frame["pm25"] = frame["pm25"].interpolate(method="time")
    return frame


def load_melbourne(data_dir: str | os.PathLike | None = None):
    """Melbourne daily minimum temperature (column ``Temp``) with a DatetimeIndex ``Date``."""
    return _read_csv("melbourne", data_dir, parse_dates=["Date"], index_col="Date")


__all__ = [
    "DATASETS",
    "DataError",
    "load_aapl",
    "load_beijing",
    "load_imdb",
    "load_melbourne",
    "load_republic",
    "load_shakespeare",
    "locate",
    "normalize_review",
    "strip_gutenberg",
]
