r"""Does the label-free feature space rank generators as the labelled classifier's does?

On the MNIST test digits, trains (or loads from the cache) both domain feature extractors, the
classifier (labels) and the label-free encoder (SimCLR + SwAV prototypes, no labels), plus an
untrained encoder of the same architecture as an ablation, then computes FD and KID in each space for a spread of generators:
an untrained one, checkpoints of one training run, its pruned / QAT / int8 variants, truncated
latents (less diverse samples), and mode-collapsed "generators" made of held-out real digits of
one class or of five classes. Reports the Spearman rank correlation of the FDs between spaces and
the real-vs-real floor of each space; writes results.md and results.json to --out_dir.

The real digits are split in two halves: the first is the reference set every generator is
compared with; the "real" generators draw from the second, so no image is compared with itself.
The extractors are trained on all 10,000 digits, as the pipeline's evaluate stage would.

  PYTHONPATH=. nice -n 15 python experiments/benchmarks/bench_feature_spaces.py \
      --spread_dir=/work/tmp/spread --out_dir=/work/tmp/bench_feature_spaces

--spread_dir holds generator_step<N>.keras checkpoints and a compressed run directory
mnist_w32/ (experiments/train.py to 200, 500, 1000, 2000 steps, then experiments/compress.py).
"""

import glob
import json
import os
import time

import numpy as np
from absl import app, flags, logging
from scipy import stats

from tfgan_opt import DataConfig, data
from tfgan_opt.core.artifacts import atomic_write_json, atomic_write_text
from tfgan_opt.core.compat import keras
from tfgan_opt.evaluation import features, generators, label_free

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "idx:/work/shared/data/mnist-t10k/t10k-images-idx3-ubyte.gz",
                    "Labelled real data (28x28 MNIST test digits by default).")
flags.DEFINE_string("spread_dir", "/work/tmp/spread", "Folder of the generators (see above).")
flags.DEFINE_string("out_dir", "/work/tmp/bench_feature_spaces", "Output folder.")
flags.DEFINE_string("cache_dir", None, "Extractor cache (default <out_dir>/feature_cache).")
flags.DEFINE_integer("num_samples", 1000, "Images per generator (the single-class set has ~1000).")
flags.DEFINE_integer("seed", 0, "Seed of the split, the latents and the KID subsets.")


def _timed(function, *args, **kwargs):
    wall, cpu = time.monotonic(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.monotonic() - wall, time.process_time() - cpu


def _extractors(images, labels, cache_dir):
    """name -> (extractor, training record)."""
    classifier, wall, cpu = _timed(features.get_or_train_feature_extractor, images, labels,
                                   int(labels.max()) + 1, cache_dir)
    out = {"classifier": (classifier, {"wall_s": wall, "cpu_s": cpu, "load": os.getloadavg()[0],
                                       "held_out_accuracy": classifier.accuracy})}
    encoder, wall, cpu = _timed(label_free.get_or_train_label_free_extractor, images, cache_dir)
    out["label_free"] = (encoder, {"wall_s": wall, "cpu_s": cpu, "load": os.getloadavg()[0],
                                   "view_accuracy": encoder.view_accuracy})
    keras.utils.set_random_seed(FLAGS.seed)
    untrained = label_free.EncoderFeatureExtractor(
        label_free.feature_model(label_free.build_encoder(images.shape[1:])))
    out["untrained_encoder"] = (untrained, {"view_accuracy": label_free.view_matching_accuracy(
        untrained.encoder, images[:256])})
    return out


def _generator_images(spread_dir, num, seed):
    """(name, images) of every trained generator found in ``spread_dir``, in a fixed order."""
    rows = []
    checkpoints = sorted(glob.glob(os.path.join(spread_dir, "generator_step*.keras")),
                         key=lambda p: int(p.rsplit("step", 1)[1].split(".")[0]))
    last = None
    for path in checkpoints:
        last = generators.load_generator_function(path)
        rows.append((f"dense, {os.path.basename(path)[len('generator_'):-len('.keras')]}",
                     generators.generate(last, num, seed)))
    rows.insert(0, ("untrained generator", generators.generate(
        generators.KerasGeneratorFunction(generators.untrained_like(last.generator, seed)), num,
        seed)))
    # Truncated latents: z scaled down gives less diverse samples (a partial collapse).
    z = generators.sample_latents(num, last.latent_dim, seed)
    rows.append(("dense final, latents x0.3 (truncated)", last(0.3 * z)))
    run = os.path.join(spread_dir, "mnist_w32")
    for name, path in [("pruned (Keras)", "prune/generator.keras"),
                       ("pruned+QAT (Keras)", "qat/generator.keras"),
                       ("dense int8 TFLite", "export/dense_int8.tflite"),
                       ("pruned+QAT int8 TFLite", "export/pruned_qat_int8.tflite")]:
        if os.path.exists(os.path.join(run, path)):
            function = generators.load_generator_function(os.path.join(run, path))
            rows.append((name, generators.generate(function, num, seed)))
    return rows


def _real_generators(images, labels, num, seed):
    """Held-out real digits as generators: all classes (the ideal), five classes, one class."""
    rng = np.random.default_rng(seed + 1)
    rows = [("real digits (held out): all classes", images[rng.permutation(len(images))[:num]])]
    five = np.flatnonzero(labels < 5)
    rows.append(("real digits: classes 0-4 only", images[rng.permutation(five)[:num]]))
    one = np.flatnonzero(labels == 1)
    rows.append(("real digits: class 1 only (mode collapse)", images[rng.permutation(one)[:num]]))
    return rows


def _table(rows, spaces):
    header = "| generator | " + " | ".join(f"FD {s} | KID {s}" for s in spaces) + " |"
    lines = [header, "|" + "---|" * (1 + 2 * len(spaces))]
    for name, result in rows:
        cells = [f"{result[s]['frechet_distance']:.3f} | {result[s]['kid_mean']:.4f}"
                 for s in spaces]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    del argv
    logging.set_verbosity(logging.INFO)
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    config = DataConfig(source=FLAGS.dataset, image_size=28, shuffle_buffer=0)
    images, labels = data.load_arrays(config)
    order = np.random.default_rng(FLAGS.seed).permutation(len(images))
    reference, held_out = order[:len(images) // 2], order[len(images) // 2:]
    extractors = _extractors(images, labels, FLAGS.cache_dir
                             or os.path.join(FLAGS.out_dir, "feature_cache"))
    spaces = list(extractors)
    candidates = (_generator_images(FLAGS.spread_dir, FLAGS.num_samples, FLAGS.seed)
                  + _real_generators(images[held_out], labels[held_out], FLAGS.num_samples,
                                     FLAGS.seed))
    results = []
    for name, fake in candidates:
        result = {s: features.compute_metrics(e, images[reference], fake, labels[reference],
                                              seed=FLAGS.seed) for s, (e, _) in extractors.items()}
        logging.info("%s: %s", name, {s: round(r["frechet_distance"], 3) for s, r in result.items()})
        results.append((name, result))
    floors = {s: features.real_noise_floor(e, images, labels, seed=FLAGS.seed)
              for s, (e, _) in extractors.items()}
    fds = {s: [r[s]["frechet_distance"] for _, r in results] for s in spaces}
    kids = {s: [r[s]["kid_mean"] for _, r in results] for s in spaces}
    correlations = {f"{metric} {s} vs classifier": float(stats.spearmanr(values[s],
                                                                         values["classifier"])[0])
                    for metric, values in (("FD", fds), ("KID", kids)) for s in spaces
                    if s != "classifier"}
    record = {"load_average": os.getloadavg(), "num_samples": FLAGS.num_samples,
              "extractors": {s: info for s, (_, info) in extractors.items()},
              "spearman": correlations, "floors": floors,
              "generators": {name: r for name, r in results}}
    atomic_write_json(os.path.join(FLAGS.out_dir, "results.json"), record)
    floor_rows = [("real vs real floor (5000 vs 5000)", floors)]
    text = "\n\n".join([
        "# FD in the classifier's and the label-free feature spaces (MNIST test digits)",
        f"{FLAGS.num_samples} images per generator against 5,000 reference digits; load "
        f"average {os.getloadavg()[0]:.1f}.",
        _table(results + floor_rows, spaces),
        "Spearman rank correlation over the generators (floor row excluded):\n\n"
        + "\n".join(f"- {k}: {v:.3f}" for k, v in correlations.items()),
        "Extractors:\n\n" + "\n".join(f"- {s}: {json.dumps(info)}"
                                      for s, (_, info) in extractors.items())])
    atomic_write_text(os.path.join(FLAGS.out_dir, "results.md"), text + "\n")
    print(text)


if __name__ == "__main__":
    app.run(main)
