"""Model files never run code: HDF5 and code-carrying layers are refused before deserializing."""

import dataclasses
import json
import os
import zipfile

import pytest

from tfgan_opt import models, testing
from tfgan_opt.core import keras_files
from tfgan_opt.core.compat import keras
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.evaluation import generators


@pytest.fixture
def marker(tmp_path):
    return str(tmp_path / "payload_ran")


def test_the_payload_really_runs_code_in_plain_tf_keras_even_with_safe_mode(tmp_path, marker):
    # The control: without tfgan_opt's check the HDF5 file executes its lambda.
    path = testing.malicious_keras_file(str(tmp_path / "evil.h5"), marker)
    assert not os.path.exists(marker)
    keras.models.load_model(path, safe_mode=True)
    assert os.path.exists(marker)


@pytest.mark.parametrize("name", ["evil.h5", "generator.keras", "evil"])
def test_hdf5_file_under_any_name_is_refused_and_its_code_never_runs(tmp_path, marker, name):
    path = testing.malicious_keras_file(str(tmp_path / name), marker, save_format="h5")
    with pytest.raises(ModelFileError, match=r"is an HDF5 \(legacy \.h5\) Keras file"):
        models.load_generator(path)
    with pytest.raises(ModelFileError, match=r"HDF5"):
        generators.load_generator_function(path)
    assert not os.path.exists(marker)


def test_zip_keras_file_with_a_lambda_layer_is_refused_before_deserializing(tmp_path, marker):
    path = testing.malicious_keras_file(str(tmp_path / "evil.keras"), marker, save_format="keras")
    for load in (models.load_generator, models.load_discriminator):
        with pytest.raises(ModelFileError, match=r"contains a Lambda layer, which carries code"):
            load(path)
    assert not os.path.exists(marker)


def _rewrite_config(src, dst, edit):
    with zipfile.ZipFile(src) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(entries["config.json"])
    edit(config)
    entries["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dst, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def test_unknown_layer_class_is_refused_naming_it(tmp_path):
    generator, _, _ = testing.tiny_gan()
    good = str(tmp_path / "good.keras")
    models.save_network(generator, good)

    def rename_first_dense(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Dense":
                layer["class_name"] = "EvilDense"
                break

    bad = str(tmp_path / "bad.keras")
    _rewrite_config(good, bad, rename_first_dense)
    with pytest.raises(ModelFileError, match=r"unknown class 'EvilDense'"):
        models.load_generator(bad)


@pytest.mark.parametrize("content, message", [
    (b"", r"does not start like a zip archive"),
    (b"PK\x03\x04 truncated", r"damaged \.keras archive"),
    (os.urandom(64), r"does not start like a zip archive"),
])
def test_damaged_or_foreign_bytes_are_refused_with_one_line(tmp_path, content, message):
    path = tmp_path / "g.keras"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        models.load_generator(str(path))


def test_directory_instead_of_file_is_refused(tmp_path):
    with pytest.raises(ModelFileError, match=r"is a directory, not a \.keras file"):
        keras_files.check_keras_file(str(tmp_path), "generator")


def test_every_network_the_pipeline_saves_passes_the_check(tmp_path):
    from tfgan_opt.compress import prune, quantize
    from tfgan_opt.core.config import PruneConfig
    generator, _, config = testing.tiny_gan()
    discriminator = models.build_discriminator(dataclasses.replace(config, spectral_norm=True))
    pruned = prune.apply_pruning(generator, PruneConfig(target_sparsity=0.5), total_steps=4)
    for name, model in [("g", generator), ("d", discriminator), ("pruned", pruned),
                        ("qat", quantize.apply_qat(testing.tiny_gan("mlp")[0]))]:
        path = str(tmp_path / f"{name}.keras")
        models.save_network(model, path)
        keras_files.check_keras_file(path, name, models.custom_objects())
