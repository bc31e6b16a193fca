"""Tests of the export stage: every format converts, runs on LiteRT and matches Keras."""

import os

import numpy as np
import pytest

from tfgan_opt.export import benchmark
from tfgan_opt.export import tflite
from tfgan_opt.core.compat import keras
from tfgan_opt.core.config import EXPORT_FORMATS, ExportConfig, ModelConfig
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.export.litert import describe_tflite, load_tflite_generator, read_tflite
from tfgan_opt.models import Generator, build_generator

LATENT_DIM = 8
CONFIG = ExportConfig(representative_samples=64, verify_samples=32, seed=0)

# Lower PSNR bounds (dB, peak-to-peak 2.0) on the tiny random generator, whose outputs spread
# over [-1, 1] (std ~0.4). float32 differs from Keras by float rounding only (measured ~145 dB);
# float16 rounds weights to 11 significant bits (~80 dB). Integer formats are bounded by 8-bit
# steps: the int8 tanh output alone has a fixed step of 1/128, which caps PSNR near 59 dB, and
# three int8 activations in front of it add their own rounding (measured ~43 dB for int8, ~54 dB
# for dynamic range). 30 dB (RMS error 0.06, four output steps) leaves a wide margin and still
# fails a broken conversion: all-zero or miscalibrated outputs score below 15 dB here.
MIN_PSNR_DB = {"float32": 60.0, "float16": 40.0, "dynamic_range": 30.0, "int8": 30.0,
               "int8_float_io": 30.0}


def _spread_weights(generator, gain=1.8, seed=1):
    """Redraws kernels with a fan-in scaled std, so that outputs cover [-1, 1].

    The DCGAN initializer (std 0.02) gives outputs of order 1e-4, which every format would
    reproduce "perfectly" after rounding to zero; a test on them would prove nothing.
    """
    rng = np.random.default_rng(seed)
    for layer in generator.network.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        shape = kernel.shape.as_list()
        fan_in = np.prod(shape[:-1]) if len(shape) == 2 else np.prod(shape[:2]) * shape[3] / 2
        kernel.assign(rng.normal(0, gain / np.sqrt(fan_in), shape).astype(np.float32))
    return generator


def _tiny_generator(image_size=8, latent_dim=LATENT_DIM, width=4):
    config = ModelConfig(arch="dcgan", image_size=image_size, latent_dim=latent_dim, width=width)
    return _spread_weights(build_generator(config, seed=0))


def _calibrate_qat(network):
    """Wraps ``network`` with tfmot QAT and lets its activation ranges settle.

    QAT's activation ranges start empty (every output quantizes to 0) and are learned as moving
    averages in training-mode calls; a few such calls stand in for QAT fine-tuning.
    """
    import tensorflow_model_optimization as tfmot

    qat = Generator(tfmot.quantization.keras.quantize_model(network))
    rng = np.random.default_rng(3)
    for _ in range(10):
        qat(rng.standard_normal((64, LATENT_DIM)).astype(np.float32), training=True)
    return qat


def _bn_free_qat_generator():
    """A DCGAN-like network without BatchNorm, wrapped by tfmot QAT and calibrated."""
    z = keras.Input((LATENT_DIM,), name="z")
    x = keras.layers.Dense(2 * 2 * 8, name="project")(z)
    x = keras.layers.Reshape((2, 2, 8), name="reshape")(x)
    x = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="up1")(x)
    x = keras.layers.LeakyReLU(0.2, name="up1_act")(x)
    x = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", name="to_image")(x)
    image = keras.layers.Activation("tanh", name="tanh")(x)
    return _calibrate_qat(_spread_weights(Generator(keras.Model(z, image))).network)


@pytest.fixture(scope="module")
def generator():
    return _tiny_generator()


@pytest.fixture(scope="module")
def exported(generator, tmp_path_factory):
    """Every format of `CONFIG`, written into one folder: (folder, {format: path})."""
    out_dir = str(tmp_path_factory.mktemp("export"))
    paths = {}
    for fmt in CONFIG.formats:
        if fmt == tflite.SAVED_MODEL_FORMAT:
            paths[fmt] = tflite.export_saved_model(generator, os.path.join(out_dir, fmt), CONFIG)
        else:
            paths[fmt] = tflite.export_tflite(
                generator, os.path.join(out_dir, f"generator_{fmt}.tflite"), CONFIG, fmt)
    return out_dir, paths


@pytest.fixture(scope="module")
def reports(exported, generator):
    return {fmt: (tflite.verify_saved_model if fmt == tflite.SAVED_MODEL_FORMAT
                  else tflite.verify_tflite)(path, generator, CONFIG)
            for fmt, path in exported[1].items()}


def _keras_images(generator, z):
    return generator(z, training=False).numpy()


def test_every_format_is_written_under_its_file_name(exported):
    out_dir, paths = exported
    assert list(paths) == list(EXPORT_FORMATS)
    assert paths["saved_model"] == os.path.join(out_dir, "saved_model")
    for fmt in tflite.TFLITE_FORMATS:
        assert paths[fmt] == os.path.join(out_dir, f"generator_{fmt}.tflite")
        read_tflite(paths[fmt])  # raises unless it is a TFLite flatbuffer
    assert os.path.isfile(os.path.join(paths["saved_model"], "saved_model.pb"))


def test_export_leaves_no_temporary_files(exported):
    out_dir, _ = exported
    leftovers = [name for _, dirs, files in os.walk(out_dir) for name in dirs + files
                 if name.startswith(".tmp-")]
    assert leftovers == []


@pytest.mark.parametrize("fmt", tflite.TFLITE_FORMATS)
def test_tflite_file_matches_keras_with_xnnpack(fmt, reports, generator):
    report = reports[fmt]
    assert report["delegate"] == "XNNPACK"
    assert report["shape_ok"] and report["output_shape"] == list(generator.image_shape)
    assert report["in_range"], (report["min"], report["max"])
    assert report["psnr_db"] > MIN_PSNR_DB[fmt], report["psnr_db"]
    # The outputs really span the range, so the PSNR above is not earned on constant images.
    assert report["min"] < -0.5 and report["max"] > 0.5


def test_tflite_files_have_fixed_batch_and_no_shape_ops(reports):
    for fmt in tflite.TFLITE_FORMATS:
        assert reports[fmt]["input_shape"] == [1, LATENT_DIM]
        assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(reports[fmt]["ops"]), fmt


def test_int8_file_has_int8_io_and_no_float_ops(reports):
    report = reports["int8"]
    assert (report["input_dtype"], report["output_dtype"]) == ("int8", "int8")
    assert report["float_ops"] == []
    assert report["range_slack"] == pytest.approx(1 / 128)  # TFLite's fixed int8 tanh step


def test_int8_float_io_file_converts_only_at_its_edges(reports):
    report = reports["int8_float_io"]
    assert (report["input_dtype"], report["output_dtype"]) == ("float32", "float32")
    assert report["ops"][0] == "QUANTIZE" and report["ops"][-1] == "DEQUANTIZE"
    assert report["float_ops"] == []


def test_float_files_report_their_float_ops(reports):
    assert reports["float32"]["num_float_ops"] == len(reports["float32"]["ops"])
    assert reports["float16"]["float_ops"].count("DEQUANTIZE") >= 1  # float16 -> float32 weights


def test_saved_model_signature_maps_z_to_image(reports, exported, generator):
    report = reports["saved_model"]
    assert report["input_spec"] == {"shape": [None, LATENT_DIM], "dtype": "float32"}
    assert report["output_spec"] == {"shape": [None, 8, 8, 1], "dtype": "float32"}
    import tensorflow as tf
    signature = tf.saved_model.load(exported[1]["saved_model"]).signatures["serving_default"]
    z = np.random.default_rng(5).standard_normal((3, LATENT_DIM)).astype(np.float32)
    np.testing.assert_allclose(signature(z=tf.constant(z))["image"].numpy(),
                               _keras_images(generator, z), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt, atol", [("float32", 1e-5), ("int8", 0.25)])
def test_load_tflite_generator_matches_keras_on_any_sample_count(fmt, atol, exported, generator):
    tflite_generator = load_tflite_generator(exported[1][fmt])
    assert tflite_generator.batch_size == 1  # a fixed-batch file cannot be resized
    z = np.random.default_rng(6).standard_normal((5, LATENT_DIM)).astype(np.float32)
    images = tflite_generator(z)
    assert images.dtype == np.float32 and images.shape == (5, 8, 8, 1)
    np.testing.assert_allclose(images, _keras_images(generator, z), rtol=0, atol=atol)


def test_load_tflite_generator_pads_the_last_batch_of_a_batch_file(generator, tmp_path):
    path = str(tmp_path / "batch4.tflite")
    tflite.export_tflite(generator, path, CONFIG, "float32", batch_size=4)
    tflite_generator = load_tflite_generator(path)
    assert tflite_generator.batch_size == 4
    z = np.random.default_rng(7).standard_normal((6, LATENT_DIM)).astype(np.float32)
    np.testing.assert_allclose(tflite_generator(z), _keras_images(generator, z), rtol=0,
                               atol=1e-5)


def test_load_tflite_generator_batches_a_dynamic_batch_file(generator, tmp_path):
    import tensorflow as tf
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(generator.network).convert())
    tflite_generator = load_tflite_generator(str(path), batch_size=4)
    assert tflite_generator.batch_size == 4
    z = np.random.default_rng(8).standard_normal((6, LATENT_DIM)).astype(np.float32)
    np.testing.assert_allclose(tflite_generator(z), _keras_images(generator, z), rtol=0,
                               atol=1e-5)


def test_non_tflite_file_raises_model_file_error_naming_it(tmp_path):
    path = tmp_path / "generator.tflite"
    path.write_bytes(b"this is not a flatbuffer at all")
    for call in (lambda: load_tflite_generator(str(path)),
                 lambda: tflite.verify_tflite(str(path), None, CONFIG)):
        with pytest.raises(ModelFileError) as info:
            call()
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelFileError, match="missing.tflite"):
        load_tflite_generator(str(tmp_path / "missing.tflite"))


def test_truncated_tflite_file_raises_model_file_error(exported, tmp_path):
    content = read_tflite(exported[1]["float32"])
    path = tmp_path / "truncated.tflite"
    path.write_bytes(content[:len(content) // 3])
    with pytest.raises(ModelFileError, match="truncated.tflite"):
        load_tflite_generator(str(path))


def test_non_saved_model_directory_raises_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match=str(tmp_path)):
        tflite.verify_saved_model(str(tmp_path), None, CONFIG)


def test_unknown_format_is_rejected_by_name(generator):
    with pytest.raises(ValueError, match="'int4'"):
        tflite.make_converter(generator, "int4", CONFIG)


# The converter warns that the int8 input has no user-given statistics; a QAT model's
# QuantizeLayer carries the learned input range, and the assertions below check the result.
@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_qat_network_exports_to_int8_without_float_ops_and_to_saved_model(tmp_path):
    qat = _bn_free_qat_generator()
    for fmt in ("int8", "int8_float_io"):
        path = tflite.export_tflite(qat, str(tmp_path / f"{fmt}.tflite"), CONFIG, fmt)
        report = tflite.verify_tflite(path, qat, CONFIG)
        assert report["float_ops"] == [], (fmt, report["float_ops"])
        assert report["delegate"] == "XNNPACK"
        # Keras simulates the same int8 grid with fake-quant: only rounding order differs
        # (measured ~48 dB).
        assert report["psnr_db"] > 35.0, (fmt, report["psnr_db"])
    path = tflite.export_saved_model(qat, str(tmp_path / "saved_model"), CONFIG)
    assert tflite.verify_saved_model(path, qat, CONFIG)["max_abs_error"] < 1e-5


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_verify_flags_the_input_requantization_of_qat_with_dense_batchnorm(tmp_path):
    # tfmot QAT of Dense -> BatchNorm (the DCGAN's projection) calibrates z twice, and the
    # converter leaves DEQUANTIZE -> QUANTIZE after the int8 input: float ops inside an int8
    # file, which verification must report. Folding BN before QAT avoids them (see the
    # BN-free test above).
    qat = _calibrate_qat(_tiny_generator().network)
    path = tflite.export_tflite(qat, str(tmp_path / "int8.tflite"), CONFIG, "int8")
    report = tflite.verify_tflite(path, qat, CONFIG)
    assert report["float_ops"] == ["DEQUANTIZE", "QUANTIZE"]
    assert report["psnr_db"] > MIN_PSNR_DB["int8"]


def test_sparse_int8_of_pruned_generator_runs_and_reports_the_xnnpack_failure(tmp_path):
    # At 8x8/width 4 XNNPACK still prepares the file; the failure needs a larger sparse kernel.
    pruned = _tiny_generator(image_size=16, latent_dim=16, width=8)
    for layer in pruned.network.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            values = kernel.numpy()
            values[np.abs(values) < np.quantile(np.abs(values), 0.8)] = 0
            kernel.assign(values)
    path = tflite.export_tflite(pruned, str(tmp_path / "sparse.tflite"), CONFIG, "int8",
                                sparse=True)
    report = tflite.verify_tflite(path, pruned, CONFIG)
    assert "DENSIFY" in report["ops"]
    # LiteRT 2.3's XNNPACK cannot prepare int8 with sparse weights (TF-STACK.md); the file
    # must still run, on the builtin kernels, and say so.
    assert report["delegate"].startswith("none (XNNPACK failed: ")
    assert report["psnr_db"] > MIN_PSNR_DB["int8"]


def test_describe_counts_only_interior_float_ops_of_int8_files(exported):
    info = describe_tflite(read_tflite(exported[1]["int8_float_io"]))
    assert info["inputs"][0]["dtype"] == "float32" and info["outputs"][0]["step"] > 0
    assert info["float_ops"] == []


def test_benchmark_reports_ordered_percentiles(exported, generator):
    for stats in (benchmark.benchmark_tflite(exported[1]["int8"], runs=6, warmup=1),
                  benchmark.benchmark_keras(generator, batch_size=2, runs=6, warmup=1)):
        assert stats["runs"] == 6
        assert 0 < stats["p5_ms"] <= stats["median_ms"] <= stats["p95_ms"]


def test_benchmark_refuses_a_batch_the_file_cannot_run(exported):
    with pytest.raises(ValueError, match="batch 4"):
        benchmark.tflite_runner(exported[1]["float32"], batch_size=4)


def test_file_sizes_counts_raw_and_gzip_bytes(tmp_path, exported):
    path = tmp_path / "zeros.bin"
    path.write_bytes(bytes(10_000))
    sizes = benchmark.file_sizes(str(path))
    assert sizes["bytes"] == 10_000 and 0 < sizes["gzip_bytes"] < 200
    directory = benchmark.file_sizes(exported[1]["saved_model"])
    assert directory["bytes"] > directory["gzip_bytes"] > 0


def _signature_list(path):
    from ai_edge_litert.interpreter import Interpreter
    return Interpreter(model_path=path).get_signature_list()


def test_every_tflite_file_has_the_serving_signature_z_to_image(exported, reports):
    for fmt in tflite.TFLITE_FORMATS:
        assert _signature_list(exported[1][fmt]) == {
            "serving_default": {"inputs": ["z"], "outputs": ["image"]}}, fmt
        assert reports[fmt]["signatures"] == {
            "serving_default": {"inputs": ["z"], "outputs": ["image"]}}


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_qat_files_keep_the_signature(tmp_path):
    # A tfmot QAT model cannot be saved as a SavedModel; with the Keras model as the converter's
    # trackable the converter silently dropped every signature (issue 12).
    qat = _bn_free_qat_generator()
    for fmt in ("int8", "int8_float_io"):
        path = tflite.export_tflite(qat, str(tmp_path / f"{fmt}.tflite"), CONFIG, fmt)
        assert _signature_list(path) == {
            "serving_default": {"inputs": ["z"], "outputs": ["image"]}}, fmt


def test_verification_refuses_a_file_without_the_signature(generator, tmp_path):
    import tensorflow as tf
    # The converter's own fallback path (no trackable holding the variables) for a QAT model
    # writes no signature; a Keras model converted directly names it differently.
    path = tmp_path / "unsigned.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(generator.network).convert())
    with pytest.raises(ModelFileError, match=r"unsigned.tflite has no 'serving_default' "
                                              r"signature 'z' -> 'image' \(signatures: "):
        tflite.verify_tflite(str(path), generator, CONFIG)


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_verification_refuses_a_qat_file_whose_signature_was_dropped(tmp_path):
    import tensorflow as tf
    qat = _bn_free_qat_generator()
    spec = tf.TensorSpec([1, LATENT_DIM], tf.float32, name="z")
    function = tf.function(lambda z: {"image": qat(z, training=False)}).get_concrete_function(spec)
    path = tmp_path / "dropped.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([function], qat).convert())
    assert _signature_list(str(path)) == {}  # the converter's silent fallback, as reported
    with pytest.raises(ModelFileError, match=r"\(signatures: none\)"):
        tflite.verify_tflite(str(path), qat, CONFIG)


def test_a_saved_model_exported_with_the_old_output_key_still_loads(generator, tmp_path):
    import tensorflow as tf
    from tfgan_opt.evaluation.generators import SavedModelGeneratorFunction
    module = tf.Module()
    module.generator_variables = list(generator.variables)
    module.serve = tf.function(lambda z: {"images": generator(z, training=False)},
                               input_signature=[tf.TensorSpec([None, LATENT_DIM], tf.float32,
                                                              name="z")])
    tf.saved_model.save(module, str(tmp_path / "old"), signatures={"serving_default": module.serve})
    function = SavedModelGeneratorFunction(str(tmp_path / "old"))
    z = np.random.default_rng(9).standard_normal((3, LATENT_DIM)).astype(np.float32)
    np.testing.assert_allclose(function(z), _keras_images(generator, z), rtol=0, atol=1e-6)
