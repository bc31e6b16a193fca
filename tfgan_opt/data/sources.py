"""Image sources: each kind of ``DataConfig.source`` read into arrays (or, for TFDS, a dataset).

``DataConfig.source`` names one of five kinds of source:

* ``digits``: scikit-learn's 8x8 digits (1797 images, ships with scikit-learn, works offline);
* ``idx:<path>``: an MNIST-style IDX images file, gzipped or not (labels read from beside it);
* ``npz:<path>``: a NumPy ``.npz`` archive;
* ``folder:<dir>``: PNG/JPEG files, optionally one subfolder per class;
* anything else: a TensorFlow Datasets name (``mnist``, ``fashion_mnist``, ``cifar10``...).

Local loaders share one signature, ``(config, location) -> (uint8 [N, h, w, c], int64 [N] or
None)``, and sit in ``SOURCES`` next to the TFDS loader, which returns a dataset instead.

Every failure a user can fix (missing path, corrupt file, unprepared TFDS data...) raises
`DataError` with a one-line message naming the source and what to do instead.
"""

import gzip
import math
import os
import zipfile
import zlib
from typing import Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from tfgan_opt.core.config import DataConfig
from tfgan_opt.core.errors import DataError
from tfgan_opt.core.naming import first_line
from tfgan_opt.data.fit import fit_square

_ALTERNATIVES = "digits / idx:<path> / npz:<path> / folder:<dir>"
_LOCAL_PREFIXES = ("idx", "npz", "folder")
_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049
_NPZ_IMAGE_KEYS = ("x", "images", "x_train")
_NPZ_LABEL_KEYS = ("y", "labels", "y_train")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Slack for float images that were rescaled with rounding error (e.g. 1.0000001).
_FLOAT_RANGE_TOLERANCE = 1e-3


def parse_source(source: str) -> Tuple[str, Optional[str]]:
    """Splits ``DataConfig.source`` into a ``SOURCES`` key and a location.

    Returns:
      ``(kind, location)``: ``("idx" | "npz" | "folder", path)``, ``("digits", None)`` or
      ``("tfds", name)``.

    Raises:
      DataError: a local prefix with no path after it.
    """
    for kind in _LOCAL_PREFIXES:
        if source.startswith(kind + ":"):
            location = source[len(kind) + 1:]
            if not location:
                raise DataError(f"source {source!r} needs a path after '{kind}:'")
            return kind, os.path.expanduser(location)
    if source == "digits":
        return "digits", None
    return "tfds", source


# ----------------------------------------------------------------------------- local loaders


def load_digits(config: DataConfig, location: Optional[str]):
    """scikit-learn's 8x8 digits: uint8 [1797, 8, 8, 1] (0..16 scaled to 0..255), labels 0..9."""
    del config, location  # One signature for every local loader.
    from sklearn import datasets  # Lazy: slow to import and only this source needs it.

    digits = datasets.load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, digits.target.astype(np.int64)


def _read_possibly_gzipped(path: str, what: str) -> bytes:
    if not os.path.isfile(path):
        raise DataError(f"{what} {path} does not exist; check the path, or use {_ALTERNATIVES}")
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x1f\x8b":  # gzip magic; names ending in .gz are not trusted.
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{what} {path} starts like gzip but cannot be decompressed "
                        f"({first_line(e)}); download it again") from e


def _parse_idx(path: str, data: bytes, magic: int, ndim: int, kind: str) -> np.ndarray:
    """Parses an IDX file of uint8 values: big-endian int32 magic, ``ndim`` int32 sizes, data."""
    header = 4 * (1 + ndim)
    if len(data) < header:
        raise DataError(f"IDX file {path} is truncated: {len(data)} bytes, shorter than its "
                        f"{header}-byte header; download it again")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(f"IDX file {path} has magic {found}, expected {magic} (IDX {kind}); "
                        f"pass the {kind} file")
    shape = tuple(int.from_bytes(data[4 * i:4 * i + 4], "big") for i in range(1, ndim + 1))
    needed = math.prod(shape)
    if len(data) - header < needed:
        raise DataError(f"IDX file {path} is truncated: its header says {'x'.join(map(str, shape))}"
                        f" ({needed} bytes) but it holds {len(data) - header}; download it again")
    return np.frombuffer(data, np.uint8, count=needed, offset=header).reshape(shape)


def _idx_labels_beside(images_path: str, count: int) -> Optional[np.ndarray]:
    """Labels from the ``labels-idx1`` file next to an ``images-idx3`` file, or None."""
    directory, name = os.path.split(images_path)
    if "images-idx3" not in name:
        return None
    labels_path = os.path.join(directory, name.replace("images-idx3", "labels-idx1"))
    if not os.path.isfile(labels_path):
        return None
    try:
        labels = _parse_idx(labels_path, _read_possibly_gzipped(labels_path, "IDX labels file"),
                            _IDX_LABELS_MAGIC, 1, "labels")
    except DataError as e:
        # The images are still usable; training an unconditional GAN does not need labels.
        logging.warning("Ignoring labels: %s", e)
        return None
    if len(labels) != count:
        logging.warning("Ignoring labels %s: %d labels for %d images", labels_path, len(labels),
                        count)
        return None
    return labels.astype(np.int64)


def load_idx(config: DataConfig, location: str):
    """An MNIST IDX images file (magic 2051), gzipped or not -> uint8 [N, rows, cols, 1].

    Labels come from the file of the same name with ``images-idx3`` replaced by ``labels-idx1``
    when it exists, has magic 2049 and as many entries; otherwise they are None.
    """
    del config
    data = _read_possibly_gzipped(location, "IDX file")
    images = _parse_idx(location, data, _IDX_IMAGES_MAGIC, 3, "images")[..., None]
    return images, _idx_labels_beside(location, len(images))


def _to_uint8_nhwc(array: np.ndarray, name: str) -> np.ndarray:
    """uint8/integer 0..255, float [0, 1] or float [-1, 1] -> uint8 [N, H, W, C].

    A float array whose minimum is below 0 is taken as [-1, 1], otherwise as [0, 1].
    """
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise DataError(f"{name} has shape {list(array.shape)}; expected [N, H, W] or "
                        f"[N, H, W, C] with C 1 or 3 (channels last)")
    if array.dtype == np.uint8 or array.size == 0:
        return array.astype(np.uint8)
    low, high = float(array.min()), float(array.max())
    if np.issubdtype(array.dtype, np.integer) and low >= 0 and high <= 255:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating) and np.isfinite([low, high]).all():
        tol = _FLOAT_RANGE_TOLERANCE
        if -1 - tol <= low < 0 and high <= 1 + tol:
            return np.round(np.clip((array + 1.0) * 127.5, 0, 255)).astype(np.uint8)
        if low >= 0 and high <= 1 + tol:
            return np.round(np.clip(array * 255.0, 0, 255)).astype(np.uint8)
    raise DataError(f"{name} is {array.dtype} with values in [{low:g}, {high:g}]; expected uint8 "
                    f"0..255 or float in [0, 1] or [-1, 1]")


def load_npz(config: DataConfig, location: str):
    """Images from a ``.npz`` archive, see `_to_uint8_nhwc` for the accepted dtypes and ranges.

    The images are ``config.npz_key``, else the first of ``x``, ``images``, ``x_train``; labels are
    the first of ``y``, ``labels``, ``y_train`` that is 1-D with one entry per image.
    """
    if not os.path.isfile(location):
        raise DataError(f"NPZ file {location} does not exist; check the path, or use "
                        f"{_ALTERNATIVES}")
    try:
        archive = np.load(location, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{location} is not a valid .npz archive ({first_line(e)}); save one with "
                        f"np.savez(path, x=images, y=labels)") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{location} holds a single .npy array, not an .npz archive; save one with "
                        f"np.savez(path, x=images, y=labels)")
    with archive:
        image_key = _npz_image_key(config, location, list(archive.keys()))
        label_key = next((k for k in _NPZ_LABEL_KEYS if k in archive), None)
        images, labels = _read_npz_arrays(archive, location, image_key, label_key)
    images = _to_uint8_nhwc(images, f"array {image_key!r} in {location}")
    if labels is not None and (labels.ndim != 1 or len(labels) != len(images)):
        logging.warning("Ignoring %r in %s: shape %s does not match %d images", label_key,
                        location, labels.shape, len(images))
        labels = None
    return images, None if labels is None else labels.astype(np.int64)


def _read_npz_arrays(archive, location: str, image_key: str, label_key: Optional[str]):
    try:  # Members are read lazily, so a damaged archive can fail only here.
        return archive[image_key], archive[label_key] if label_key else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"cannot read arrays from {location} ({first_line(e)}); save it again with "
                        f"np.savez(path, x=images, y=labels)") from e


def _npz_image_key(config: DataConfig, location: str, keys) -> str:
    candidates = (config.npz_key,) if config.npz_key else _NPZ_IMAGE_KEYS
    for key in candidates:
        if key in keys:
            return key
    raise DataError(f"NPZ file {location} has no array named {' or '.join(candidates)} (it has: "
                    f"{', '.join(keys) or 'nothing'}); set npz_key to the images array")


def _image_files(directory: str):
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files)
                  if f.lower().endswith(_IMAGE_SUFFIXES)]
    return found


def _decode_image(path: str, channels: int) -> np.ndarray:
    from PIL import Image  # Lazy: only this source needs Pillow.

    try:
        with Image.open(path) as image:
            if image.mode.startswith("I"):
                return _from_16_bit(np.asarray(image), channels)
            # Grayscale <-> RGB conversion here lets one folder mix both; RGBA loses its alpha.
            return np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot decode image {path} ({first_line(e)}); remove or replace the "
                        f"file") from e


def _from_16_bit(array: np.ndarray, channels: int) -> np.ndarray:
    # Pillow opens a 16-bit grayscale PNG in an integer mode ("I;16", "I"), and convert("L")
    # clips it to [0, 255] (a normal 16-bit photo becomes white): scale 0..65535 to 0..255.
    scaled = np.round(np.clip(array.astype(np.float64), 0, 65535) / 257.0).astype(np.uint8)
    return scaled if channels == 1 else np.repeat(scaled[..., None], 3, axis=-1)


def _stack_fitted(config: DataConfig, location: str, arrays) -> np.ndarray:
    """One array of images; a folder of mixed sizes is fitted to ``image_size`` first."""
    if len({array.shape[:2] for array in arrays}) > 1:
        logging.info("Folder %s mixes image sizes: each is %s to a square and resized to %dx%d",
                     location, "center-cropped" if config.fit == "crop" else "padded",
                     config.image_size, config.image_size)
        arrays = [fit_square(array, config.image_size, config.fit) for array in arrays]
    return np.stack(arrays)


def load_folder(config: DataConfig, location: str):
    """PNG/JPEG files under a folder (recursive) -> uint8 [N, H, W, config.channels].

    When the images sit in subfolders only, the sorted names of the subfolders holding images are
    the classes (label = index); otherwise labels are None. Images of mixed sizes are each
    center-cropped (``config.fit="crop"``) or padded (``"pad"``) to a square and resized to
    ``config.image_size``; a folder of one size is left to the shared resize.
    """
    if not os.path.isdir(location):
        raise DataError(f"image folder {location} does not exist; check the path, or use "
                        f"{_ALTERNATIVES}")
    top_level = [f for f in os.listdir(location) if f.lower().endswith(_IMAGE_SUFFIXES)
                 and os.path.isfile(os.path.join(location, f))]
    subfolders = sorted(d for d in os.listdir(location)
                        if os.path.isdir(os.path.join(location, d)))
    per_class = {d: _image_files(os.path.join(location, d)) for d in subfolders}
    classes = [d for d in subfolders if per_class[d]]
    if top_level or not classes:
        paths, labels = _image_files(location), None
    else:
        paths = [p for d in classes for p in per_class[d]]
        labels = np.concatenate([np.full(len(per_class[d]), i, np.int64)
                                 for i, d in enumerate(classes)])
        logging.info("Folder %s: %d classes %s", location, len(classes), classes)
    images = _stack_fitted(config, location, read_folder_images(location, config.channels, paths))
    return images.reshape(images.shape[:3] + (config.channels,)), labels


def read_folder_images(location: str, channels: int, paths=None):
    """Every PNG/JPEG under a folder (recursive, sorted), decoded at its own size.

    Returns:
      A list of uint8 [H, W] (channels 1) or [H, W, 3] arrays.

    Raises:
      DataError: no image files, or one that does not decode.
    """
    if paths is None:
        if not os.path.isdir(location):
            raise DataError(f"image folder {location} does not exist; check the path")
        paths = _image_files(location)
    if not paths:
        raise DataError(f"image folder {location} holds no {'/'.join(_IMAGE_SUFFIXES)} files; "
                        f"add images or point to another folder")
    return [_decode_image(p, channels) for p in paths]


def folder_class_names(location: str):
    """The class names `load_folder` labels a folder's images with (label = index), or None."""
    subfolders = sorted(d for d in os.listdir(location)
                        if os.path.isdir(os.path.join(location, d)))
    return [d for d in subfolders if _image_files(os.path.join(location, d))] or None


# ----------------------------------------------------------------------------- TFDS


def load_tfds(config: DataConfig, name: str) -> tf.data.Dataset:
    """``tfds.load(name, as_supervised=True)`` -> unbatched ``(uint8 [h, w, c], int64)`` examples.

    Raises:
      DataError: an unknown name, or data absent from ``config.data_dir`` with download off.
    """
    import tensorflow_datasets as tfds  # Lazy: slow to import and only this source needs it.

    try:
        return tfds.load(name, split=config.split, as_supervised=True,
                         data_dir=config.data_dir, download=config.download)
    except tfds.core.DatasetNotFoundError as e:
        raise DataError(f"unknown TFDS dataset {name!r} (source={config.source!r}); use a name "
                        f"from tfds.list_builders(), or {_ALTERNATIVES}") from e
    except AssertionError as e:
        if "could not find data" not in str(e):
            raise
        data_dir = config.data_dir or tfds.core.constants.DATA_DIR
        raise DataError(f"TFDS dataset {name!r} is not prepared in {data_dir}; prepare it once "
                        f"with network access (or pass --download), or use {_ALTERNATIVES}") from e
    except ValueError as e:  # e.g. an unknown split or a dataset without (image, label) keys.
        raise DataError(f"TFDS dataset {name!r} (split={config.split!r}) cannot be loaded as "
                        f"(image, label): {first_line(e)}") from e


SOURCES = {
    "digits": load_digits,
    "idx": load_idx,
    "npz": load_npz,
    "folder": load_folder,
    "tfds": load_tfds,
}
