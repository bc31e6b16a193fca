"""The size / speed / quality frontier of channel pruning x weight pruning, from ONE trained run.

For every MACs target (channel pruning, `pipeline.finetune.channel_prune_gan`) and every weight
sparsity (`finetune.prune_gan`, on the narrow generator), the generator is recovered as the pipeline
does it (same `RecoveryConfig`: image + discriminator-feature + inner-feature distillation, the
damage-tied schedule), quantization-aware fine-tuned, and exported to the deployed full-int8 file.
Each point reports:

- size: raw bytes of the dense float32 TFLite file over the int8 file's gzip bytes, and gzip over
  gzip;
- speed: batch 1, 1 thread, every file timed in this process with the files interleaved round by
  round; the speed-up is the median of per-round ratios to the dense float32 file;
- quality: the project's domain-classifier Frechet distance against the real data, divided by the
  dense Keras generator's, and the classes covered.

A point of each MACs target shares one channel-pruned generator; every point starts from the same
trained run (``--run_dir``, made by experiments/train.py or pipeline.py). Finished points are
recorded in ``<out_dir>/points/*.json`` and skipped on a rerun. Writes ``frontier.json``,
``frontier.md`` and ``frontier.png`` (FD vs size, speed-up as colour, the Pareto front joined).

    PYTHONPATH=. python experiments/benchmarks/bench_frontier.py --run_dir=runs/mnist \
        --out_dir=runs/frontier --cache_dir=runs/feature_cache
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _cli  # noqa: E402  (experiments/ on the path first)
import _flags  # noqa: E402
from absl import flags  # noqa: E402

flags.DEFINE_string("run_dir", None, "A run directory with a trained GAN.", required=True)
flags.DEFINE_string("out_dir", None, "Frontier files, points and plot go here.", required=True)
flags.DEFINE_list("macs_targets", ["1.0", "0.5", "0.25", "0.15"], "Fractions of the MACs kept.")
flags.DEFINE_list("sparsities", ["0", "0.5", "0.8"], "Weight sparsities (0: no weight pruning).")
flags.DEFINE_integer("seed", 0, "Seed of the export and evaluation latents.")
flags.DEFINE_float("fd_budget", 0.10, "Quality budget: FD at most (1 + this) x dense.")
_flags.define_compress_flags(recovery_steps=500, qat_steps=300, num_samples=5000)
FLAGS = _flags.FLAGS


def main(argv):
    del argv
    compress = _flags.compress_configs()
    macs_targets = [float(v) for v in FLAGS.macs_targets]
    sparsities = [float(v) for v in FLAGS.sparsities]
    from tfgan_opt.pipeline import frontier, stages  # imports TensorFlow: flags checked first

    # The channel and prune sections give the criterion and the pruning settings; each point
    # replaces their MACs target and sparsity.
    config = stages.load_run_config(FLAGS.run_dir).replace(**compress)
    result = frontier.run_frontier(
        config, run_dir=FLAGS.run_dir, out_dir=FLAGS.out_dir, macs_targets=macs_targets,
        sparsities=sparsities, fd_budget=FLAGS.fd_budget)
    print(result["table"])


if __name__ == "__main__":
    _cli.run(main)
