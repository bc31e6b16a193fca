"""Export stage: a `Generator` -> SavedModel and TFLite files, each checked against Keras.

`export_tflite` writes one TFLite format (`TFLITE_FORMATS`), `export_saved_model` the SavedModel;
both have the signature ``(generator, path, config, ..., *, batch_size=1, sparse=False) -> path``.
TFLite files are converted from a concrete function with a FIXED batch
(1 by default): a dynamic batch makes the converter keep SHAPE/STRIDED_SLICE/PACK ops in front of
every RESHAPE and TRANSPOSE_CONV. A plain float network and a tfmot QAT network (fake-quant
``QuantizeWrapperV2`` layers) go through the same path; for the latter ``Optimize.DEFAULT`` turns
the learned fake-quant ranges into an int8 model. Every file has one signature, ``serving_default``:
input ``z`` float32/int8 [batch, latent_dim] (and, for a conditional generator, ``label`` int32
[batch]) -> output ``image`` [batch, H, W, C]. (QAT of a Dense -> BatchNorm pair leaves a
DEQUANTIZE -> QUANTIZE requantization of z in the int8 files; `verify_tflite` reports it in
``float_ops``. Folding BN into the layer before QAT avoids it.)

Verification runs each file by its signature in a fresh LiteRT interpreter with the default XNNPACK
delegate (what a phone runs) on seeded latents and compares with the Keras generator; a file
without the signature fails it. PSNR uses the
peak-to-peak range 2.0 of images in [-1, 1].
"""

import math

import numpy as np
import tensorflow as tf
from absl import logging

from tfgan_opt.core.artifacts import atomic_directory, atomic_write_bytes
from tfgan_opt.core.config import EXPORT_FORMATS
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.core.naming import class_cycle, sample_latents
from tfgan_opt.core.native_output import quiet_native_output
from tfgan_opt.export.litert import (TFLiteGenerator, describe_tflite, load_tflite_generator,
                                     read_tflite, run_signature)
from tfgan_opt.export.metadata import embed_model_card, read_model_card
from tfgan_opt.models.base import slice_inputs

__all__ = ["TFLITE_FORMATS", "check_signature", "convert_tflite", "describe_signature", "export_saved_model", "export_tflite",
           "load_tflite_generator", "representative_latents", "verification_latents",
           "verify_saved_model", "verify_tflite"]

SAVED_MODEL_FORMAT = "saved_model"
TFLITE_FORMATS = tuple(fmt for fmt in EXPORT_FORMATS if fmt != SAVED_MODEL_FORMAT)
SIGNATURE_KEY = "serving_default"
INPUT_KEY = "z"
LABEL_KEY = "label"  # a conditional generator's class input, int32 [batch] in every format
OUTPUT_KEY = "image"
# The output key of SavedModels exported before issue 12; loaders still accept it.
LEGACY_OUTPUT_KEY = "images"
IMAGE_PEAK_TO_PEAK = 2.0
_INT8_FORMATS = ("int8", "int8_float_io")


def representative_latents(latent_dim, config):
    """Calibration latents for full-integer quantization, from N(0, I).

    Seeded by ``config.seed``, in a stream distinct from `verification_latents`, so that a file
    is never checked on the data it was calibrated on.

    Returns:
      float32 [config.representative_samples, latent_dim].
    """
    return sample_latents(config.representative_samples, latent_dim, [config.seed, 1])


def verification_latents(latent_dim, config):
    """Latents each exported file is compared on: float32 [verify_samples, latent_dim], N(0, I)."""
    return sample_latents(config.verify_samples, latent_dim, [config.seed, 2])


def verification_inputs(generator, config):
    """What each exported file is compared on: `verification_latents`, and for a conditional
    generator ``(z, labels)`` with every class (at least ``num_classes`` samples)."""
    if not generator.conditional:
        return verification_latents(generator.latent_dim, config)
    num = max(config.verify_samples, generator.num_classes)
    z = sample_latents(num, generator.latent_dim, [config.seed, 2])
    return z, class_cycle(num, generator.num_classes)


def _input_specs(generator, batch_size):
    specs = [tf.TensorSpec([batch_size, generator.latent_dim], tf.float32, name=INPUT_KEY)]
    if generator.conditional:
        specs.append(tf.TensorSpec([batch_size], tf.int32, name=LABEL_KEY))
    return specs


def _generate_function(generator):
    if generator.conditional:
        def generate_conditional(z, label):
            return {OUTPUT_KEY: generator((z, label), training=False)}
        return tf.function(generate_conditional)

    def generate(z):
        return {OUTPUT_KEY: generator(z, training=False)}
    return tf.function(generate)


def _configure_float32(converter, representative_dataset):
    del converter, representative_dataset  # the converter's defaults are plain float32.


def _configure_float16(converter, representative_dataset):
    del representative_dataset
    converter.optimizations = {tf.lite.Optimize.DEFAULT}
    converter.target_spec.supported_types = [tf.float16]


def _configure_dynamic_range(converter, representative_dataset):
    del representative_dataset  # without one, DEFAULT quantizes weights only.
    converter.optimizations = {tf.lite.Optimize.DEFAULT}


def _configure_int8_float_io(converter, representative_dataset):
    converter.optimizations = {tf.lite.Optimize.DEFAULT}
    converter.representative_dataset = representative_dataset
    # INT8 builtins only: conversion fails rather than leaving a float op in the graph.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def _configure_int8(converter, representative_dataset):
    _configure_int8_float_io(converter, representative_dataset)
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8


_CONFIGURE = {
    "float32": _configure_float32,
    "float16": _configure_float16,
    "dynamic_range": _configure_dynamic_range,
    "int8": _configure_int8,
    "int8_float_io": _configure_int8_float_io,
}


def make_converter(generator, fmt, config, batch_size=1, sparse=False):
    """Builds the `tf.lite.TFLiteConverter` for one format, ready to ``convert()``.

    Args:
      generator: `Generator` (plain, pruned-and-stripped, or QAT network inside).
      fmt: one of `TFLITE_FORMATS`.
      config: `ExportConfig` (calibration sample count and seed).
      batch_size: the fixed batch of the file's input [batch_size, latent_dim].
      sparse: add ``Optimize.EXPERIMENTAL_SPARSITY`` (smaller files for pruned weights).

    Returns:
      A configured converter.

    Raises:
      ValueError: ``fmt`` is not a TFLite format or ``batch_size`` is not positive.
    """
    if fmt not in _CONFIGURE:
        raise ValueError(f"format={fmt!r} is not one of {', '.join(TFLITE_FORMATS)}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be positive")
    function = _generate_function(generator).get_concrete_function(
        *_input_specs(generator, batch_size))
    # The trackable must hold the variables for the signature to survive: given a tfmot QAT Keras
    # model (which cannot be saved as a SavedModel), the converter silently falls back to a path
    # that drops every signature. A plain module holding the variables works for every model.
    variables = tf.Module()
    variables.generator_variables = list(generator.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], variables)
    latents = representative_latents(generator.latent_dim, config)
    # Whole batches only; np.resize repeats the samples when there are fewer than one batch.
    batches = max(1, len(latents) // batch_size)
    latents = np.resize(latents, (batches * batch_size, generator.latent_dim))
    # A conditional generator is calibrated on every class in turn; the labels stay int32.
    labels = class_cycle(len(latents), generator.num_classes) if generator.conditional else None

    def representative_dataset():
        for start in range(0, len(latents), batch_size):
            chunk = [latents[start:start + batch_size]]
            yield chunk if labels is None else chunk + [labels[start:start + batch_size]]

    _CONFIGURE[fmt](converter, representative_dataset)
    if sparse:
        converter.optimizations = set(converter.optimizations) | {
            tf.lite.Optimize.EXPERIMENTAL_SPARSITY}
    return converter


def convert_tflite(generator, fmt, config, batch_size=1, sparse=False):
    """Converts a generator to TFLite bytes (see `make_converter` for the arguments)."""
    converter = make_converter(generator, fmt, config, batch_size, sparse)
    with quiet_native_output():  # the converter's C++ prints, e.g. "fully_quantize: 0, ..."
        return converter.convert()


def export_tflite(generator, path, config, fmt, *, batch_size=1, sparse=False, card=None):
    """Converts a generator to ``fmt`` and writes the file atomically; returns ``path``.

    ``card``: optional JSON-serializable dict embedded as the file's model card
    (`tfgan_opt.export.metadata`), with its ``signature`` entry set from the converted file
    (`describe_signature`).
    """
    content = convert_tflite(generator, fmt, config, batch_size, sparse)
    if card is not None:
        content = embed_model_card(content, dict(card, signature=describe_signature(content)))
    atomic_write_bytes(path, content)
    logging.debug("Exported %s TFLite generator (batch %d%s): %s, %d bytes", fmt, batch_size,
                 ", sparse" if sparse else "", path, len(content))
    return path


def export_saved_model(generator, path, config, *, batch_size=1, sparse=False):
    """Writes a SavedModel whose ``serving_default`` maps z -> {"image": ...}.

    The signature takes z float32 [None, latent_dim] and returns ``image`` float32
    [None, H, W, C] in [-1, 1]. ``batch_size`` and ``sparse`` only concern TFLite files: the
    SavedModel keeps a dynamic batch and dense weights. ``config`` is unused.

    Returns:
      ``path`` (a directory, replaced atomically).
    """
    del config, batch_size, sparse
    module = tf.Module()
    # Only the variables are attached, not the Keras model: saving a Keras model re-traces all
    # of its layers' call functions, which is slow and adds nothing to the serving signature.
    module.generator_variables = list(generator.variables)
    module.serve = tf.function(_generate_function(generator).python_function,
                               input_signature=_input_specs(generator, None))
    with atomic_directory(path) as tmp_dir:
        tf.saved_model.save(module, tmp_dir, signatures={SIGNATURE_KEY: module.serve})
    logging.info("Exported SavedModel generator: %s", path)
    return path


def _keras_images(generator, z, batch_size=256):
    num = len(z[0]) if isinstance(z, tuple) else len(z)
    return np.concatenate([generator(slice_inputs(z, i, i + batch_size), training=False).numpy()
                           for i in range(0, num, batch_size)])


def _class_psnr(reference, images, labels):
    """The lowest per-class PSNR (dB) of a conditional file against Keras, and the classes."""
    worst = math.inf
    for label in np.unique(labels):
        mse = float(np.mean(np.square(images[labels == label].astype(np.float64)
                                      - reference[labels == label])))
        worst = min(worst, math.inf if mse == 0 else 10 * math.log10(IMAGE_PEAK_TO_PEAK ** 2 / mse))
    return worst, len(np.unique(labels))


def _compare(reference, images, expected_shape):
    error = images.astype(np.float64) - reference
    mse = float(np.mean(np.square(error)))
    psnr = math.inf if mse == 0 else 10 * math.log10(IMAGE_PEAK_TO_PEAK ** 2 / mse)
    return {"output_shape": list(images.shape[1:]), "shape_ok": images.shape[1:] == expected_shape,
            "min": float(images.min()), "max": float(images.max()), "psnr_db": psnr,
            "max_abs_error": float(np.max(np.abs(error))),
            "mean_abs_error": float(np.mean(np.abs(error)))}


def check_signature(content, name):
    """Raises `ModelFileError` unless the file's ``serving_default`` signature maps z -> image
    (or z, label -> image)."""
    signatures = describe_tflite(content)["signatures"]
    found = signatures.get(SIGNATURE_KEY) or {}
    if (sorted(found.get("inputs", [])) not in ([INPUT_KEY], sorted([INPUT_KEY, LABEL_KEY]))
            or found.get("outputs") != [OUTPUT_KEY]):
        found = ", ".join(f"{key}: {s['inputs']} -> {s['outputs']}" for key, s in signatures.items())
        raise ModelFileError(f"{name} has no {SIGNATURE_KEY!r} signature {INPUT_KEY!r} -> "
                             f"{OUTPUT_KEY!r} (signatures: {found or 'none'}); export it with "
                             "tfgan_opt.export.tflite.export_tflite")


def describe_signature(content):
    """The ``serving_default`` signature of a file as a model card states it.

    Returns:
      ``{"key": "serving_default", "inputs": {"z": tensor}, "outputs": {"image": tensor}}`` where
      each tensor is ``{"shape", "dtype", "quantization"}``, ``quantization`` being
      ``{"scale", "zero_point"}`` (real = scale * (q - zero_point)) or None for float tensors.
    """
    info = describe_tflite(content)

    def tensor(details):
        quantization = ({"scale": details["scale"], "zero_point": details["zero_point"]}
                        if details["scale"] else None)
        return {"shape": details["shape"], "dtype": details["dtype"], "quantization": quantization}

    return {"key": SIGNATURE_KEY,
            "inputs": {_input_key(details): tensor(details) for details in info["inputs"]},
            "outputs": {OUTPUT_KEY: tensor(info["outputs"][0])}}


def _input_key(details):
    """``label`` for the int32 class input of a conditional file, else ``z``."""
    return LABEL_KEY if details["dtype"] == "int32" else INPUT_KEY


def _z_details(info):
    return next(details for details in info["inputs"] if _input_key(details) == INPUT_KEY)


def verify_tflite(path, generator, config):
    """Runs a ``.tflite`` file by its signature as a phone would and compares it with Keras.

    Args:
      path: ``.tflite`` file.
      generator: the `Generator` it was exported from.
      config: `ExportConfig` (``verify_samples`` and ``seed``).

    Returns:
      A dict: ``output_shape`` / ``shape_ok``; ``min``, ``max`` of the outputs,
      ``range_slack`` (the output quantization step; 0 for float outputs) and ``in_range``
      (within [-1 - slack, 1 + slack]); ``psnr_db`` (peak-to-peak 2.0), ``max_abs_error``,
      ``mean_abs_error`` against Keras on the same latents; ``delegate`` (``"XNNPACK"`` or
      ``"none (XNNPACK failed: <reason>)"``); ``ops``; ``float_ops`` (ops computing in float,
      QUANTIZE/DEQUANTIZE at the model's edges excepted) and ``num_float_ops``;
      ``input_dtype``, ``output_dtype``, ``input_shape``; ``bytes``; ``signatures`` (see
      `describe_tflite`); ``model_card`` (the embedded card read back, or None).

    Raises:
      ModelFileError: ``path`` is missing, is not a TFLite model, has no ``serving_default``
        signature z -> image, or has a model card that does not parse.
    """
    content = read_tflite(path)
    TFLiteGenerator(content, batch_size=1, name=str(path))  # parses it: a bad file fails first
    check_signature(content, path)
    info = describe_tflite(content)
    z = verification_inputs(generator, config)
    images, delegate = run_signature(content, z, SIGNATURE_KEY, INPUT_KEY, OUTPUT_KEY)
    reference = _keras_images(generator, z)
    report = _compare(reference, images, tuple(generator.image_shape))
    if generator.conditional:  # every class is checked, the worst one reported
        report["class_psnr_db"], report["classes_checked"] = _class_psnr(reference, images, z[1])
    slack = info["outputs"][0]["step"]
    report.update(
        range_slack=slack, in_range=report["min"] >= -1 - slack and report["max"] <= 1 + slack,
        delegate=delegate, ops=info["ops"], float_ops=info["float_ops"],
        num_float_ops=len(info["float_ops"]), input_dtype=_z_details(info)["dtype"],
        output_dtype=info["outputs"][0]["dtype"], input_shape=_z_details(info)["shape"],
        bytes=len(content), signatures=info["signatures"],
        model_card=read_model_card(content, path))
    logging.info("Verified %s: PSNR %.1f dB, max error %.4f, delegate %s, %d float ops", path,
                 report["psnr_db"], report["max_abs_error"], delegate,
                 report["num_float_ops"])
    return report


def verify_saved_model(path, generator, config):
    """Loads a SavedModel's ``serving_default`` signature and compares it with Keras.

    Args:
      path: SavedModel directory written by `export_saved_model`.
      generator: the `Generator` it was exported from.
      config: `ExportConfig`.

    Returns:
      A dict with the keys of `verify_tflite`'s comparison (``output_shape``, ``shape_ok``,
      ``min``, ``max``, ``in_range``, ``psnr_db``, ``max_abs_error``, ``mean_abs_error``) and
      ``input_spec`` / ``output_spec`` (shape and dtype of ``z`` and ``image``).

    Raises:
      ModelFileError: ``path`` is not a SavedModel with a ``serving_default`` z -> image
        signature.
    """
    try:
        signature = tf.saved_model.load(path).signatures[SIGNATURE_KEY]
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        raise ModelFileError(f"{path} is not a SavedModel with a {SIGNATURE_KEY!r} signature "
                             f"({type(error).__name__})") from error
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    expected = {INPUT_KEY, LABEL_KEY} if generator.conditional else {INPUT_KEY}
    if set(inputs) != expected or set(outputs) != {OUTPUT_KEY}:
        raise ModelFileError(f"{path}: signature {SIGNATURE_KEY!r} maps {sorted(inputs)} -> "
                             f"{sorted(outputs)}, expected ['z'] -> ['image']")
    z = verification_inputs(generator, config)
    feed = ({INPUT_KEY: tf.constant(z[0]), LABEL_KEY: tf.constant(z[1])} if generator.conditional
            else {INPUT_KEY: tf.constant(z)})
    images = signature(**feed)[OUTPUT_KEY].numpy()
    report = _compare(_keras_images(generator, z), images, tuple(generator.image_shape))

    def spec(tensor_spec):
        return {"shape": tensor_spec.shape.as_list(), "dtype": tensor_spec.dtype.name}

    report.update(in_range=report["min"] >= -1 and report["max"] <= 1,
                  input_spec=spec(inputs[INPUT_KEY]), output_spec=spec(outputs[OUTPUT_KEY]))
    return report
