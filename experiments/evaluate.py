"""Evaluates generators (checkpointed run, .keras, SavedModel or .tflite) against a dataset.

    python experiments/evaluate.py --generator=runs/mnist/train/generator.keras \
        --dataset=idx:../shared/data/mnist-t10k/t10k-images-idx3-ubyte.gz --out_dir=runs/mnist_eval

Writes metrics.json, report.md and sample grids (PNG) to --out_dir. The real-vs-real floor and, for
Keras generators, an untrained generator of the same architecture are evaluated alongside. The model
card embedded in each .tflite generator is printed first; with --print_card, only the cards:

    python experiments/evaluate.py --print_card --generator=runs/digits/ship/pruned_qat_int8.tflite
"""

import json
import os

import _cli
import _flags
import _i2i
from absl import flags, logging

from tfgan_opt import EvaluationConfig
from tfgan_opt.core import rundir, runlock

_flags.define_data_flags()
flags.DEFINE_list("generator", None, "Generators to evaluate: run dirs, .keras, SavedModel dirs or "
                  ".tflite files (comma-separated).", required=True)
flags.DEFINE_string("out_dir", None, "Output folder (required unless --print_card).")
flags.DEFINE_boolean("print_card", False, "Only print the model card embedded in each .tflite "
                     "--generator, and exit.")
flags.DEFINE_boolean("overwrite", False, "Replace an out_dir made with other settings.")
flags.DEFINE_integer("num_samples", 10_000, "Generated samples per generator.")
flags.DEFINE_string("cache_dir", None, "Feature-extractor cache (default: <out_dir>/feature_cache).")
_flags.define_feature_flags()
_i2i.define_task_flag()  # --task=sr_x4 etc.: image-to-image files on a folder of images
flags.DEFINE_boolean("untrained_baseline", True, "Also evaluate an untrained generator of the "
                     "first Keras generator's architecture.")
flags.DEFINE_integer("seed", 0, "Seed of the latents.")
flags.DEFINE_boolean("trust_saved_model", False, "Load SavedModel generators. A SavedModel's graph "
                     "can run any op (file writes included): pass this only for files you trust.")
flags.adopt_module_key_flags(_flags)  # --help lists them, by group
flags.adopt_module_key_flags(_cli)  # --verbose
FLAGS = _flags.FLAGS


def _check_generator_files(paths):
    """Fails in well under a second on a missing generator or a file that is not TFLite.

    The full checks happen when each generator is loaded; these two need no TensorFlow.
    """
    from tfgan_opt.core.errors import ModelFileError
    from tfgan_opt.export.litert import read_tflite  # numpy only
    for path in paths:
        if not os.path.exists(path):
            raise ModelFileError(f"generator {path} does not exist")
        if path.endswith(".tflite"):
            read_tflite(path)


def print_cards(paths):
    """Prints the model card embedded in each ``.tflite`` file of ``paths`` (JSON)."""
    from tfgan_opt.export.litert import read_tflite
    from tfgan_opt.export.metadata import read_model_card
    for path in paths:
        if not path.endswith(".tflite"):
            continue
        card = read_model_card(read_tflite(path), path)
        print(f"Model card of {path}:" if card else f"{path} has no model card.")
        if card:
            print(json.dumps(card, indent=1, sort_keys=True))


def main(argv):
    del argv
    if FLAGS.print_card:
        _check_generator_files(FLAGS.generator)
        print_cards(FLAGS.generator)
        return
    if FLAGS.out_dir is None:
        raise _cli.usage_error("--out_dir is required (unless --print_card)")
    if _i2i.requested():
        _check_generator_files(FLAGS.generator)
        _i2i.evaluate(FLAGS.generator, FLAGS.out_dir)
        return
    if FLAGS.num_samples < 2:
        raise _cli.usage_error(f"num_samples={FLAGS.num_samples} must be at least 2")
    data_config = _flags.data_config().replace(shuffle_buffer=0)
    evaluation = EvaluationConfig(features=FLAGS.features, inception_weights=FLAGS.inception_weights)
    _check_generator_files(FLAGS.generator)
    print_cards(FLAGS.generator)
    from tfgan_opt import data  # imports TensorFlow: only once the flags are valid
    from tfgan_opt.evaluation import feature_spaces, generators

    # Every input is loaded, and the feature space checked against the data, before --out_dir is
    # touched, so a bad generator file, dataset or --features fails without deleting anything,
    # even with --overwrite.
    has_labels = data.source_has_labels(data_config)
    space = feature_spaces.resolve_feature_space(evaluation, has_labels, repr(data_config.source))
    functions = [(path, generators.load_generator_function(path, FLAGS.trust_saved_model))
                 for path in FLAGS.generator]
    real_images, real_labels = data.load_arrays(data_config)
    # A conditional .tflite file is asked for the data's classes (a Keras generator knows its own).
    num_classes = generators.num_classes_of(real_labels)
    for path, function in functions:
        generators.check_generator_function(path, function, real_images.shape[1:], seed=FLAGS.seed,
                                            num_classes=num_classes)
    with runlock.locked(FLAGS.out_dir):
        rundir.prepare_run_dir(FLAGS.out_dir, {"evaluate": {
            "generators": FLAGS.generator, "data": data_config.to_dict(),
            "num_samples": FLAGS.num_samples, "seed": FLAGS.seed,
            "evaluation": evaluation.to_dict()}}, overwrite=FLAGS.overwrite)
        _evaluate(functions, data, data_config, generators, feature_spaces, space, real_images,
                  real_labels)


def _evaluate(functions, data, data_config, generators, feature_spaces, space, real_images,
              real_labels):
    extractor = generators.domain_extractor(
        real_images, real_labels, FLAGS.cache_dir or os.path.join(FLAGS.out_dir, "feature_cache"),
        space, FLAGS.inception_weights)
    logging.info("Features: %s", feature_spaces.describe(extractor))
    results = []
    keras_functions = [f for _, f in functions if isinstance(f, generators.KerasGeneratorFunction)]
    if FLAGS.untrained_baseline and keras_functions:
        functions.append(("untrained " + FLAGS.generator[0], generators.KerasGeneratorFunction(
            generators.untrained_like(keras_functions[0].generator, FLAGS.seed))))
    num_classes = generators.num_classes_of(real_labels)  # a conditional .tflite file's classes
    for name, function in functions:
        images = generators.generate(function, FLAGS.num_samples, FLAGS.seed,
                                     num_classes=num_classes)
        generators.check_finite_images(name, images)
        metrics = generators.evaluate_images(extractor, real_images, real_labels, images, FLAGS.seed)
        logging.info("%s: FD %.3f, classes covered %s", name, metrics["frechet_distance"],
                     metrics.get("classes_covered"))
        results.append((name, metrics, images))
    floor = generators.noise_floor(extractor, real_images, real_labels, FLAGS.seed)
    report = generators.write_evaluation(FLAGS.out_dir, data.describe_source(data_config), extractor,
                                       floor, results, len(real_images))
    logging.info("Report: %s", report)


if __name__ == "__main__":
    _cli.run(main)
