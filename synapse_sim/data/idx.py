"""MNIST's IDX file format: one file (:func:`read_idx`) and a folder of the four files of a
train/test split (:func:`load_idx_folder`, the ``"idx:PATH"`` datasets of
:func:`~synapse_sim.data.datasets.load_dataset`).

A folder holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally gzipped; also the
dotted ``train-images.idx3-ubyte`` names of some mirrors). Every malformed file, a missing file,
a count mismatch or a label out of range raises with the file's name.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["MAX_IDX_CLASSES", "IDX_FILES", "read_idx", "load_idx_folder"]

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Largest number of classes an IDX folder may have (labels 0 .. MAX_IDX_CLASSES - 1): the
#: networks' output layers and one-hot targets grow with the largest label.
MAX_IDX_CLASSES = 1000
#: The four files of an IDX folder (without ``.gz``).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (the MNIST file format), optionally gzip-compressed.

    The file starts with a 4-byte magic number ``0x00 0x00 TYPE NDIM``, followed by
    ``NDIM`` big-endian uint32 dimensions and the big-endian data in C order.

    Parameters
    ----------
    path : str or os.PathLike
        The file; a name ending in ``.gz`` is decompressed.

    Returns
    -------
    numpy.ndarray
        Array of the stored shape, in native byte order (uint8 for MNIST files).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The magic number, type code, dimensions or data length are wrong, or a
        ``.gz`` file is not valid gzip. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {str(path)!r}")
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise ValueError(f"IDX file {str(path)!r} could not be read: {exc}") from exc
    if len(raw) < 4:
        raise ValueError(f"IDX file {str(path)!r} is malformed: {len(raw)} bytes, too short")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"IDX file {str(path)!r} is malformed: bad magic number 0x{raw[:4].hex()} "
            "(expected 0x0000TTNN: two zero bytes, a type code and the number of dimensions)"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        allowed = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(
            f"IDX file {str(path)!r} is malformed: unknown type code 0x{type_code:02X} "
            f"in magic number (allowed: {allowed})"
        )
    if ndim < 1:
        raise ValueError(f"IDX file {str(path)!r} is malformed: number of dimensions is 0")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"IDX file {str(path)!r} is malformed: header needs {header} bytes for "
            f"{ndim} dimensions, file has {len(raw)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"IDX file {str(path)!r} is malformed: dimensions {dims} of {dtype.name} need "
            f"{expected} data bytes, file has {len(raw) - header}"
        )
    if expected == 0:  # an empty file (a zero dimension): no data bytes to view
        return np.zeros(dims, dtype=dtype.newbyteorder("="))
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, base: str) -> Path:
    candidates = [base, base + ".gz"]
    # Some mirrors name files "train-images.idx3-ubyte".
    dotted = base.replace("-idx", ".idx")
    candidates += [dotted, dotted + ".gz"]
    for name in candidates:
        p = folder / name
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"IDX folder {str(folder)!r} is missing {base!r} (also looked for {base + '.gz'!r}); "
        f"an IDX folder needs {', '.join(IDX_FILES.values())} (each optionally .gz)"
    )


def _idx_images(path: Path) -> np.ndarray:
    arr = read_idx(path)
    if arr.ndim != 3:
        raise ValueError(
            f"IDX file {str(path)!r} is malformed: images need 3 dimensions "
            f"(n, rows, cols), got shape {arr.shape}"
        )
    if arr.dtype == np.uint8:
        x = arr.astype(np.float64) / 255.0
    elif arr.dtype.kind == "f":
        x = arr.astype(np.float64)
        if not np.all(np.isfinite(x)) or x.min(initial=0.0) < 0.0 or x.max(initial=0.0) > 1.0:
            raise ValueError(
                f"IDX file {str(path)!r}: float pixel values must be finite and in [0, 1]"
            )
    else:
        raise ValueError(
            f"IDX file {str(path)!r}: images must be uint8 (0..255) or float in [0, 1], "
            f"got {arr.dtype.name}"
        )
    return x


def _idx_labels(path: Path) -> np.ndarray:
    arr = read_idx(path)
    if arr.ndim != 1:
        raise ValueError(
            f"IDX file {str(path)!r} is malformed: labels need 1 dimension, got shape {arr.shape}"
        )
    if arr.dtype.kind not in "iu":
        raise ValueError(f"IDX file {str(path)!r}: labels must be integers, got {arr.dtype.name}")
    y = arr.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"IDX file {str(path)!r}: labels must be >= 0, found {int(y.min())}")
    return y


def load_idx_folder(folder_text: str) -> tuple[np.ndarray, ...]:
    """Read the four IDX files of a folder and check that they form a train/test split.

    Parameters
    ----------
    folder_text : str
        The folder (``~`` expanded), as written after ``idx:``.

    Returns
    -------
    x_train, y_train, x_test, y_test, paths
        float64 images in ``[0, 1]`` of shape ``(n, rows, cols)``, int64 labels, and the
        ``{key: Path}`` of the files read (keys of :data:`IDX_FILES`).

    Raises
    ------
    FileNotFoundError
        The folder or one of its files is missing.
    ValueError
        A malformed file, images and labels of different counts, an empty split, a label
        of ``MAX_IDX_CLASSES`` or more, train and test images of different shapes, or test
        labels that never occur in training.
    """
    folder = Path(folder_text).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"IDX folder {folder_text!r} does not exist or is not a directory "
            f"(dataset 'idx:{folder_text}')"
        )
    paths = {key: _find_idx(folder, base) for key, base in IDX_FILES.items()}
    x_train = _idx_images(paths["train_images"])
    y_train = _idx_labels(paths["train_labels"])
    x_test = _idx_images(paths["test_images"])
    y_test = _idx_labels(paths["test_labels"])
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"IDX folder {folder_text!r}: {split} images ({x.shape[0]}, "
                f"{paths[split + '_images'].name}) and labels ({y.shape[0]}, "
                f"{paths[split + '_labels'].name}) differ in count"
            )
        if x.shape[0] == 0:
            raise ValueError(
                f"IDX folder {folder_text!r}: the {split} images file "
                f"{paths[split + '_images'].name} holds 0 images (need at least 1)"
            )
        if int(y.max()) >= MAX_IDX_CLASSES:
            raise ValueError(
                f"IDX folder {folder_text!r}: {split} label {int(y.max())} in "
                f"{paths[split + '_labels'].name} is out of range: labels must be class "
                f"indices 0 .. {MAX_IDX_CLASSES - 1} (MAX_IDX_CLASSES)"
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"IDX folder {folder_text!r}: train images are {x_train.shape[1:]} but test "
            f"images are {x_test.shape[1:]}"
        )
    unseen = np.setdiff1d(y_test, y_train)
    if unseen.size:
        raise ValueError(
            f"IDX folder {folder_text!r}: test labels {unseen[:10].tolist()} never occur in "
            f"the training labels ({paths['train_labels'].name}); a network cannot learn a "
            "class it never sees (train labels: "
            f"{np.unique(y_train)[:20].tolist()}{' ...' if np.unique(y_train).size > 20 else ''})"
        )
    return x_train, y_train, x_test, y_test, paths
