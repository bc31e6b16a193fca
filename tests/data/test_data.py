"""Tests of tfgan_opt.data: every source, the shared preprocessing, the pipeline and the errors."""

import gzip
import os
import struct

import numpy as np
import pytest
from tfgan_opt.testing import MNIST_DIR
from PIL import Image

from tfgan_opt import data
from tfgan_opt.core.config import DataConfig
from tfgan_opt.core.errors import DataError

# The real MNIST test digits live beside the checkout (../shared), never in the repository.
_REAL_MNIST = os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz")


# ----------------------------------------------------------------------------- helpers


def _write_idx(path, array, magic, gzipped):
    payload = struct.pack(">i", magic) + b"".join(struct.pack(">i", d) for d in array.shape)
    payload += np.asarray(array, np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(payload) if gzipped else payload)
    return str(path)


def _write_image(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode=mode).save(path)
    return str(path)


def _pattern(n, h, w, c=None):
    values = (np.arange(n * h * w) * 37 % 256).astype(np.uint8).reshape(n, h, w)
    return values if c is None else np.repeat(values[..., None], c, axis=-1)


def _assert_images(images, shape):
    assert images.dtype == np.float32
    assert images.shape == shape
    assert np.all(images >= -1.0) and np.all(images <= 1.0)


def _assert_one_line_error(match, function, *args):
    with pytest.raises(DataError, match=match) as info:
        function(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


def _config(source, **kwargs):
    kwargs.setdefault("image_size", 8)
    kwargs.setdefault("batch_size", 2)
    return DataConfig(source=source, **kwargs)


# ----------------------------------------------------------------------------- sources


def test_digits_load_as_float_images_in_model_range_with_labels():
    images, labels = data.load_arrays(_config("digits", image_size=8))
    _assert_images(images, (1797, 8, 8, 1))
    np.testing.assert_allclose([images.min(), images.max()], [-1.0, 1.0])
    assert labels.dtype == np.int64 and labels.shape == (1797,)
    np.testing.assert_array_equal(np.unique(labels), np.arange(10))


@pytest.mark.parametrize("gzipped", [True, False])
def test_idx_gzipped_or_raw_loads_with_labels_from_beside(tmp_path, gzipped):
    pixels = _pattern(3, 8, 8)
    suffix = ".gz" if gzipped else ""
    path = _write_idx(tmp_path / f"t-images-idx3-ubyte{suffix}", pixels, 2051, gzipped)
    _write_idx(tmp_path / f"t-labels-idx1-ubyte{suffix}", np.array([4, 0, 9]), 2049, gzipped)
    images, labels = data.load_arrays(_config(f"idx:{path}"))
    _assert_images(images, (3, 8, 8, 1))
    np.testing.assert_allclose(images[..., 0], pixels / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(labels, [4, 0, 9])


def test_idx_gzip_is_detected_by_magic_bytes_not_name(tmp_path):
    path = _write_idx(tmp_path / "plain-images-idx3-ubyte", _pattern(2, 4, 4), 2051, True)
    images, labels = data.load_arrays(_config(f"idx:{path}", image_size=4))
    _assert_images(images, (2, 4, 4, 1))
    assert labels is None


def test_idx_with_label_count_mismatch_has_no_labels(tmp_path):
    path = _write_idx(tmp_path / "a-images-idx3-ubyte", _pattern(3, 4, 4), 2051, False)
    _write_idx(tmp_path / "a-labels-idx1-ubyte", np.array([1, 2]), 2049, False)
    assert data.load_arrays(_config(f"idx:{path}", image_size=4))[1] is None


def test_npz_uint8_maps_0_and_255_to_minus_one_and_one(tmp_path):
    pixels = np.zeros((4, 8, 8), np.uint8)
    pixels[1::2] = 255
    np.savez(tmp_path / "d.npz", images=pixels, labels=np.array([0, 1, 0, 1]))
    images, labels = data.load_arrays(_config(f"npz:{tmp_path / 'd.npz'}"))
    _assert_images(images, (4, 8, 8, 1))
    np.testing.assert_allclose(images[::2], -1.0)
    np.testing.assert_allclose(images[1::2], 1.0)
    np.testing.assert_array_equal(labels, [0, 1, 0, 1])


@pytest.mark.parametrize("low", [0.0, -1.0])
def test_npz_float_in_unit_or_symmetric_range_is_detected(tmp_path, low):
    values = np.linspace(low, 1.0, 2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 1)
    np.savez(tmp_path / "f.npz", x=values)
    images, labels = data.load_arrays(_config(f"npz:{tmp_path / 'f.npz'}"))
    _assert_images(images, (2, 8, 8, 1))
    expected = (values - low) / (1.0 - low) * 2.0 - 1.0
    np.testing.assert_allclose(images, expected, atol=1.0 / 127.5)  # uint8 quantization.
    assert labels is None


def test_npz_key_selects_the_images_array(tmp_path):
    np.savez(tmp_path / "k.npz", x=np.zeros((2, 4, 4), np.uint8), faces=np.full((3, 4, 4), 255))
    config = _config(f"npz:{tmp_path / 'k.npz'}", image_size=4, npz_key="faces")
    images, _ = data.load_arrays(config)
    _assert_images(images, (3, 4, 4, 1))
    np.testing.assert_allclose(images, 1.0)


def test_folder_flat_png_files_load_without_labels(tmp_path):
    for i in range(3):
        _write_image(tmp_path / "imgs" / f"{i}.png", np.full((8, 8), 255 * (i % 2)))
    images, labels = data.load_arrays(_config(f"folder:{tmp_path / 'imgs'}"))
    _assert_images(images, (3, 8, 8, 1))
    np.testing.assert_allclose(images[:, 0, 0, 0], [-1.0, 1.0, -1.0])
    assert labels is None


@pytest.mark.parametrize("channels", [1, 3])
def test_sixteen_bit_png_is_scaled_not_clipped_to_white(tmp_path, channels):
    folder = tmp_path / "deep"
    folder.mkdir()
    levels = np.array([0, 257 * 64, 257 * 128, 65535], np.uint16)  # 8-bit 0, 64, 128, 255
    Image.fromarray(np.tile(levels, (8, 2))).save(folder / "a.png")
    assert Image.open(folder / "a.png").mode.startswith("I")
    images, _ = data.load_arrays(_config(f"folder:{folder}", channels=channels))
    _assert_images(images, (1, 8, 8, channels))
    np.testing.assert_allclose(images[0, 0, :4, 0], np.array([0, 64, 128, 255]) / 127.5 - 1,
                               rtol=0, atol=1e-6)


def test_folder_class_subfolders_give_sorted_labels_png_and_jpeg(tmp_path):
    root = tmp_path / "classes"
    _write_image(root / "cat" / "a.jpg", _pattern(1, 8, 8, 3)[0])
    _write_image(root / "cat" / "b.png", _pattern(1, 8, 8, 3)[0])
    _write_image(root / "ant" / "c.jpeg", _pattern(1, 8, 8, 3)[0])
    images, labels = data.load_arrays(_config(f"folder:{root}", channels=3))
    _assert_images(images, (3, 8, 8, 3))
    np.testing.assert_array_equal(labels, [0, 1, 1])  # ant=0, cat=1.


def test_folder_mixing_gray_rgb_and_rgba_is_converted_to_channels(tmp_path):
    _write_image(tmp_path / "m" / "gray.png", np.full((4, 4), 255))
    _write_image(tmp_path / "m" / "rgb.png", np.full((4, 4, 3), 255))
    _write_image(tmp_path / "m" / "rgba.png", np.full((4, 4, 4), 255), mode="RGBA")
    for channels in (1, 3):
        images, _ = data.load_arrays(_config(f"folder:{tmp_path / 'm'}", image_size=4,
                                             channels=channels))
        _assert_images(images, (3, 4, 4, channels))
        np.testing.assert_allclose(images, 1.0, atol=1e-2)


def test_tfds_source_goes_through_tfds_load(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=8):
        config = _config("mnist", image_size=14, batch_size=4, data_dir=str(tmp_path))
        images, labels = data.load_arrays(config)
        batch_images, batch_labels = next(iter(data.make_dataset(config)))
        rgb_to_gray, _ = data.load_arrays(_config("cifar10", image_size=16, channels=1,
                                                  data_dir=str(tmp_path)))
    _assert_images(images, (8, 14, 14, 1))
    assert labels.dtype == np.int64 and labels.shape == (8,)
    _assert_images(batch_images.numpy(), (4, 14, 14, 1))
    assert batch_labels.dtype.name == "int64"
    _assert_images(rgb_to_gray, (8, 16, 16, 1))


# ----------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("side, image_size", [(8, 20), (32, 8)])
def test_resize_up_or_down_keeps_constant_image_constant(tmp_path, side, image_size):
    np.savez(tmp_path / "c.npz", x=np.full((2, side, side), 255, np.uint8))
    images, _ = data.load_arrays(_config(f"npz:{tmp_path / 'c.npz'}", image_size=image_size))
    _assert_images(images, (2, image_size, image_size, 1))
    np.testing.assert_allclose(images, 1.0, atol=1e-5)


def test_grayscale_to_rgb_repeats_the_channel(tmp_path):
    np.savez(tmp_path / "g.npz", x=_pattern(2, 8, 8))
    images, _ = data.load_arrays(_config(f"npz:{tmp_path / 'g.npz'}", channels=3))
    _assert_images(images, (2, 8, 8, 3))
    np.testing.assert_allclose(images[..., 1], images[..., 0])
    np.testing.assert_allclose(images[..., 2], images[..., 0])


def test_rgb_to_grayscale_uses_luma_weights(tmp_path):
    red = np.zeros((2, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    np.savez(tmp_path / "r.npz", x=red)
    images, _ = data.load_arrays(_config(f"npz:{tmp_path / 'r.npz'}", channels=1))
    _assert_images(images, (2, 8, 8, 1))
    np.testing.assert_allclose(images, 0.2989 * 2.0 - 1.0, atol=1e-3)


def test_limit_keeps_the_first_examples():
    images, labels = data.load_arrays(_config("digits", limit=5))
    _assert_images(images, (5, 8, 8, 1))
    np.testing.assert_array_equal(labels, [0, 1, 2, 3, 4])


def test_describe_source_names_size_resize_and_classes():
    text = data.describe_source(_config("digits", image_size=28))
    assert text == "digits: 1797 images 8x8x1 resized to 28x28x1, 10 classes"


# ----------------------------------------------------------------------------- pipeline


def test_make_dataset_yields_static_batches_with_minus_one_labels_when_unlabelled(tmp_path):
    np.savez(tmp_path / "u.npz", x=_pattern(5, 8, 8))
    dataset = data.make_dataset(_config(f"npz:{tmp_path / 'u.npz'}", batch_size=2), repeat=False)
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == 2  # 5 images, remainder dropped.
    assert dataset.element_spec[0].shape.as_list() == [2, 8, 8, 1]
    for images, labels in batches:
        _assert_images(images, (2, 8, 8, 1))
        np.testing.assert_array_equal(labels, [-1, -1])


def test_same_seed_gives_same_first_batch_and_other_seed_differs():
    def first_batch(seed):
        config = _config("digits", batch_size=16, shuffle_buffer=200, seed=seed)
        return next(iter(data.make_dataset(config)))[1].numpy()

    np.testing.assert_array_equal(first_batch(3), first_batch(3))
    assert not np.array_equal(first_batch(3), first_batch(4))


def test_batch_size_larger_than_source_raises(tmp_path):
    np.savez(tmp_path / "s.npz", x=_pattern(3, 8, 8))
    config = _config(f"npz:{tmp_path / 's.npz'}", batch_size=4)
    _assert_one_line_error("has 3 images, fewer than batch_size=4", data.make_dataset, config)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kind", ["idx", "npz", "folder"])
def test_missing_path_raises_clear_error(tmp_path, kind):
    missing = tmp_path / "nowhere"
    message = _assert_one_line_error("does not exist", data.load_arrays,
                                     _config(f"{kind}:{missing}"))
    assert str(missing) in message


def test_idx_with_wrong_magic_raises_clear_error(tmp_path):
    path = _write_idx(tmp_path / "x-images-idx3-ubyte", _pattern(2, 4, 4), 1234, False)
    _assert_one_line_error(r"has magic 1234, expected 2051 \(IDX images\)", data.load_arrays,
                           _config(f"idx:{path}"))


def test_truncated_idx_raises_clear_error(tmp_path):
    path = _write_idx(tmp_path / "t-images-idx3-ubyte", _pattern(2, 4, 4), 2051, False)
    with open(path, "r+b") as f:
        f.truncate(16 + 20)
    _assert_one_line_error("truncated.*2x4x4", data.load_arrays, _config(f"idx:{path}"))


def test_idx_that_is_not_gzip_decodable_raises_clear_error(tmp_path):
    path = tmp_path / "bad-images-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b" + b"not really gzip")
    _assert_one_line_error("cannot be decompressed", data.load_arrays, _config(f"idx:{path}"))


def test_npz_without_expected_array_lists_its_keys(tmp_path):
    np.savez(tmp_path / "w.npz", pixels=np.zeros((2, 4, 4)), targets=np.zeros(2))
    message = _assert_one_line_error("no array named x or images or x_train", data.load_arrays,
                                     _config(f"npz:{tmp_path / 'w.npz'}"))
    assert "pixels, targets" in message


def test_npz_that_is_not_an_archive_raises_clear_error(tmp_path):
    (tmp_path / "n.npz").write_bytes(b"just text")
    _assert_one_line_error("not a valid .npz", data.load_arrays,
                           _config(f"npz:{tmp_path / 'n.npz'}"))


def test_npz_with_wrong_rank_raises_clear_error(tmp_path):
    np.savez(tmp_path / "v.npz", x=np.zeros((4, 8), np.uint8))
    _assert_one_line_error(r"shape \[4, 8\]", data.load_arrays,
                           _config(f"npz:{tmp_path / 'v.npz'}"))


def test_corrupt_png_raises_error_naming_the_file(tmp_path):
    _write_image(tmp_path / "f" / "good.png", np.zeros((4, 4)))
    (tmp_path / "f" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    _assert_one_line_error("cannot decode image .*broken.png", data.load_arrays,
                           _config(f"folder:{tmp_path / 'f'}"))


def _mixed_size_folder(tmp_path):
    # A wide image whose centre is white and a tall one whose centre is grey.
    wide = np.zeros((4, 12), np.uint8)
    wide[:, 4:8] = 255
    tall = np.zeros((8, 4), np.uint8)
    tall[2:6] = 100
    _write_image(tmp_path / "s" / "a.png", wide)
    _write_image(tmp_path / "s" / "b.png", tall)
    return f"folder:{tmp_path / 's'}"


def test_folder_with_mixed_sizes_is_center_cropped_by_default(tmp_path):
    images, _ = data.load_arrays(_config(_mixed_size_folder(tmp_path), image_size=4))
    # The central squares are all white (255 -> 1.0) and all grey (100 -> -0.216).
    np.testing.assert_allclose(images[0], 1.0, atol=1e-6)
    np.testing.assert_allclose(images[1], 100 / 127.5 - 1.0, atol=1e-6)


def test_folder_with_mixed_sizes_pads_with_black_when_asked(tmp_path):
    images, _ = data.load_arrays(_config(_mixed_size_folder(tmp_path), image_size=12,
                                         fit="pad"))
    assert images.shape == (2, 12, 12, 1)
    np.testing.assert_allclose(images[0, :4, :, 0], -1.0)  # black band above the wide image
    np.testing.assert_allclose(images[0, 4:8, 4:8, 0], 1.0)
    np.testing.assert_allclose(images[1, :, :2, 0], -1.0)  # black band left of the tall image
    np.testing.assert_allclose(images[1, 4:8, 5:7, 0], 100 / 127.5 - 1.0, atol=1e-6)


def test_fit_square_crops_and_pads_to_the_expected_square():
    from tfgan_opt.data.fit import fit_square, square
    image = np.arange(6 * 10, dtype=np.uint8).reshape(6, 10)
    np.testing.assert_array_equal(square(image, "crop"), image[:, 2:8])
    padded = square(image, "pad")
    np.testing.assert_array_equal(padded[2:8], image)
    np.testing.assert_array_equal(padded[:2], 0)
    np.testing.assert_array_equal(fit_square(np.full((6, 10, 3), 7, np.uint8), 3, "crop"),
                                  np.full((3, 3, 3), 7, np.uint8))
    with pytest.raises(ValueError, match="stretch"):
        square(image, "stretch")


def test_unknown_fit_mode_is_a_config_error():
    from tfgan_opt.core.errors import ConfigError
    with pytest.raises(ConfigError, match="fit='stretch' is not one of crop, pad"):
        DataConfig(fit="stretch")


def test_empty_folder_raises_clear_error(tmp_path):
    (tmp_path / "e" / "sub").mkdir(parents=True)
    (tmp_path / "e" / "notes.txt").write_text("no images here")
    _assert_one_line_error("holds no .png", data.load_arrays, _config(f"folder:{tmp_path / 'e'}"))


def test_unknown_tfds_name_raises_clear_error(tmp_path):
    _assert_one_line_error("unknown TFDS dataset 'no_such_dataset_xyz'", data.load_arrays,
                           _config("no_such_dataset_xyz", data_dir=str(tmp_path)))


def test_unprepared_tfds_dataset_fails_fast_with_what_to_do(tmp_path):
    message = _assert_one_line_error("TFDS dataset 'mnist' is not prepared in", data.load_arrays,
                                     _config("mnist", data_dir=str(tmp_path), download=False))
    assert str(tmp_path) in message and "digits" in message


@pytest.mark.skipif(not os.path.exists(_REAL_MNIST), reason="real MNIST test file not present")
def test_real_mnist_idx_file_loads_with_labels():
    images, labels = data.load_arrays(_config(f"idx:{_REAL_MNIST}", image_size=28, limit=100))
    _assert_images(images, (100, 28, 28, 1))
    np.testing.assert_array_equal(labels[:5], [7, 2, 1, 0, 4])
