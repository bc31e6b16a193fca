"""Evaluates generators (checkpointed run, .keras, SavedModel or .tflite) against a dataset.

    python experiments/evaluate.py --generator=runs/mnist/train/generator.keras \
        --dataset=idx:../shared/data/mnist-t10k/t10k-images-idx3-ubyte.gz --out_dir=runs/mnist_eval

Writes metrics.json, report.md and sample grids (PNG) to --out_dir. The real-vs-real floor and, for
Keras generators, an untrained generator of the same architecture are evaluated alongside.
"""

import os

import _cli
import _flags
from absl import flags, logging

from tfgan_opt import rundir

_flags.define_data_flags()
flags.DEFINE_list("generator", None, "Generators to evaluate: run dirs, .keras, SavedModel dirs or "
                  ".tflite files (comma-separated).", required=True)
flags.DEFINE_string("out_dir", None, "Output folder.", required=True)
flags.DEFINE_boolean("overwrite", False, "Replace an out_dir made with other settings.")
flags.DEFINE_integer("num_samples", 10_000, "Generated samples per generator.")
flags.DEFINE_string("cache_dir", None, "Feature-extractor cache (default: <out_dir>/feature_cache).")
flags.DEFINE_boolean("untrained_baseline", True, "Also evaluate an untrained generator of the "
                     "first Keras generator's architecture.")
flags.DEFINE_integer("seed", 0, "Seed of the latents.")
FLAGS = _flags.FLAGS


def main(argv):
    del argv
    if FLAGS.num_samples < 2:
        raise _cli.usage_error(f"num_samples={FLAGS.num_samples} must be at least 2")
    data_config = _flags.data_config().replace(shuffle_buffer=0)
    from tfgan_opt import data, evaluate  # imports TensorFlow: only once the flags are valid

    rundir.prepare_run_dir(FLAGS.out_dir, {"evaluate": {
        "generators": FLAGS.generator, "data": data_config.to_dict(),
        "num_samples": FLAGS.num_samples, "seed": FLAGS.seed}}, overwrite=FLAGS.overwrite)
    real_images, real_labels = data.load_arrays(data_config)
    functions = [(path, evaluate.load_generator_function(path)) for path in FLAGS.generator]
    extractor = evaluate.domain_extractor(
        real_images, real_labels, FLAGS.cache_dir or os.path.join(FLAGS.out_dir, "feature_cache"))
    logging.info("Feature extractor: held-out accuracy %.4f", extractor.accuracy)
    results = []
    keras_functions = [f for _, f in functions if isinstance(f, evaluate.KerasGeneratorFunction)]
    if FLAGS.untrained_baseline and keras_functions:
        functions.append(("untrained " + FLAGS.generator[0], evaluate.KerasGeneratorFunction(
            evaluate.untrained_like(keras_functions[0].generator, FLAGS.seed))))
    for name, function in functions:
        images = evaluate.generate(function, FLAGS.num_samples, FLAGS.seed)
        metrics = evaluate.evaluate_images(extractor, real_images, real_labels, images, FLAGS.seed)
        logging.info("%s: FD %.3f, classes covered %s", name, metrics["frechet_distance"],
                     metrics.get("classes_covered"))
        results.append((name, metrics, images))
    floor = evaluate.noise_floor(extractor, real_images, real_labels, FLAGS.seed)
    report = evaluate.write_evaluation(FLAGS.out_dir, data.describe_source(data_config), extractor,
                                       floor, results, len(real_images))
    logging.info("Report: %s", report)


if __name__ == "__main__":
    _cli.run(main)
