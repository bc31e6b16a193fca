"""TFLite files of image-to-image generators: ``[1, h, w, 3] -> [1, s*h, s*w, 3]``.

The z -> image exporter (`tfgan_opt.export.tflite`) converts a concrete function of the latent;
here the input is an image tile of a fixed size (a fixed shape removes SHAPE ops and lets XNNPACK
plan once). Every file has one signature, ``serving_default``: ``input_image`` float32/int8
[1, h, w, 3] in [-1, 1] -> ``output_image`` [1, s*h, s*w, 3]. Full-int8 files are calibrated on
real degraded tiles (a phone feeds photos, not noise). Larger images go through
`tfgan_opt.evaluation.psnr.run_tiled`.
"""

import numpy as np
import tensorflow as tf
from absl import logging

from tfgan_opt.core.artifacts import atomic_write_bytes
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.core.native_output import quiet_native_output
from tfgan_opt.export.litert import describe_tflite, read_tflite, run_signature
from tfgan_opt.export.metadata import embed_model_card, read_model_card
# The per-format converter settings are the z -> image exporter's (one definition).
from tfgan_opt.export.tflite import _CONFIGURE, _compare

SIGNATURE_KEY = "serving_default"
INPUT_KEY = "input_image"
OUTPUT_KEY = "output_image"
IMAGE_FORMATS = ("float32", "float16", "dynamic_range", "int8", "int8_float_io")


def convert_image_tflite(generator, fmt, tile, calibration_tiles):
    """Converts an image-to-image generator to TFLite bytes.

    Args:
      generator: `ImageGenerator` (plain, pruned-and-stripped or QAT network inside).
      fmt: one of `IMAGE_FORMATS`.
      tile: input side h = w of the file.
      calibration_tiles: float32 [N, tile, tile, 3] degraded inputs in [-1, 1] for the int8
        ranges (unused by float formats).

    Returns:
      The ``.tflite`` bytes.
    """
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"format={fmt!r} is not one of {', '.join(IMAGE_FORMATS)}")
    spec = tf.TensorSpec([1, tile, tile, 3], tf.float32, name=INPUT_KEY)
    function = tf.function(lambda image: {OUTPUT_KEY: generator(image, training=False)})
    concrete = function.get_concrete_function(spec)
    # A module holding the variables keeps the signature for QAT models (see export.tflite).
    variables = tf.Module()
    variables.generator_variables = list(generator.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], variables)
    tiles = np.asarray(calibration_tiles, np.float32)

    def representative_dataset():
        for index in range(len(tiles)):
            yield [tiles[index:index + 1]]

    _CONFIGURE[fmt](converter, representative_dataset)
    with quiet_native_output():
        return converter.convert()


def describe_image_signature(content):
    """``{"key", "inputs": {name: {"shape", "dtype", "quantization"}}, "outputs": {...}}``."""
    info = describe_tflite(content)

    def tensor(details):
        quantization = ({"scale": details["scale"], "zero_point": details["zero_point"]}
                        if details["scale"] else None)
        return {"shape": details["shape"], "dtype": details["dtype"], "quantization": quantization}

    return {"key": SIGNATURE_KEY, "inputs": {INPUT_KEY: tensor(info["inputs"][0])},
            "outputs": {OUTPUT_KEY: tensor(info["outputs"][0])}}


def export_image_tflite(generator, path, fmt, tile, calibration_tiles, card=None):
    """`convert_image_tflite`, the model card embedded (with the signature, ``input_height`` and
    ``input_width``), written atomically. Returns ``path``."""
    content = convert_image_tflite(generator, fmt, tile, calibration_tiles)
    if card is not None:
        content = embed_model_card(content, dict(card, input_height=tile, input_width=tile,
                                                 signature=describe_image_signature(content)))
    atomic_write_bytes(path, content)
    logging.info("Exported %s image model: %s, %d bytes", fmt, path, len(content))
    return path


def check_image_signature(content, name):
    """Raises `ModelFileError` unless ``serving_default`` maps input_image -> output_image."""
    signatures = describe_tflite(content)["signatures"]
    if signatures.get(SIGNATURE_KEY) != {"inputs": [INPUT_KEY], "outputs": [OUTPUT_KEY]}:
        raise ModelFileError(f"{name} has no {SIGNATURE_KEY!r} signature {INPUT_KEY!r} -> "
                             f"{OUTPUT_KEY!r} (found {signatures or 'none'}); export it with "
                             f"tfgan_opt.export.image_tflite.export_image_tflite")


def tflite_image_function(path):
    """A ``.tflite`` image model as a numpy function [1, h, w, 3] -> [1, s*h, s*w, 3] (int8
    inputs and outputs (de)quantized with the file's own parameters), and its delegate."""
    content = read_tflite(path)
    check_image_signature(content, path)
    delegate = []

    def predict(batch):
        images, used = run_signature(content, batch, SIGNATURE_KEY, INPUT_KEY, OUTPUT_KEY,
                                     num_threads=1)
        delegate[:] = [used]
        return images

    predict.delegate = delegate
    return predict


def verify_image_tflite(path, generator, tiles):
    """Runs a file on ``tiles`` (float32 [N, h, w, 3]) in LiteRT (XNNPACK) and compares with
    Keras.

    Returns:
      dict: ``psnr_db`` (peak-to-peak 2.0), ``max_abs_error``, ``mean_abs_error``,
      ``output_shape``, ``shape_ok``, ``delegate``, ``input_dtype``, ``output_dtype``,
      ``input_shape``, ``bytes``, ``model_card``.
    """
    content = read_tflite(path)
    check_image_signature(content, path)
    tiles = np.asarray(tiles, np.float32)
    images, delegate = run_signature(content, tiles, SIGNATURE_KEY, INPUT_KEY, OUTPUT_KEY)
    reference = np.concatenate([generator(tiles[i:i + 1], training=False).numpy()
                                for i in range(len(tiles))])
    report = _compare(reference.astype(np.float64), images, tuple(reference.shape[1:]))
    info = describe_tflite(content)
    report.update(delegate=delegate, input_dtype=info["inputs"][0]["dtype"],
                  output_dtype=info["outputs"][0]["dtype"],
                  input_shape=info["inputs"][0]["shape"],
                  output_tensor_shape=info["outputs"][0]["shape"], bytes=len(content),
                  model_card=read_model_card(content, path))
    return report
