"""Flags shared by the experiment scripts, and the config objects built from them.

Flags only ever live under experiments/; the library receives config objects. Each script calls
the ``define_*_flags`` it needs and then ``flags.adopt_module_key_flags(_flags)``, so its
``--help`` lists them; `GROUPS` records which help group (data, model, training, compression,
export, evaluation) each flag belongs to. Choices are ``DEFINE_enum`` over the name tuples of
`tfgan_opt.core.config`, never a copy of them.
"""

import contextlib

from absl import flags

from tfgan_opt import (ChannelPruneConfig, ConfigError, DataConfig, EvaluationConfig, ExportConfig,
                       LossConfig, ModelConfig, PipelineConfig, PruneConfig, QuantizeConfig,
                       RecoveryConfig, TrainConfig)
from tfgan_opt.core.names import CLASS_VECTORS, FIT_MODES
from tfgan_opt.core.config import (ARCHITECTURES, AUGMENT_POLICIES, CHANNEL_CRITERIA,
                                   EXPORT_FORMATS, FEATURE_SPACES, LOSS_NAMES, LR_SCHEDULES,
                                   PRUNE_MODES, PRUNING_SCHEDULES, SPARSITY_ALLOCATIONS,
                                   STRATEGIES, UPDATE_MODES, UPSAMPLING_MODES)

FLAGS = flags.FLAGS

# Help group -> flag names, in definition order (rendered by _cli's --help).
GROUPS = {}


@contextlib.contextmanager
def _group(name):
    """Records the flags defined inside the block under help group ``name``."""
    before = set(FLAGS)
    yield
    GROUPS.setdefault(name, []).extend(n for n in FLAGS if n not in before)


def _enum(name, default, choices, help_text):
    flags.DEFINE_enum(name, default, list(choices), help_text)


def define_run_flags():
    with _group("run"):
        flags.DEFINE_string("run_dir", None, "Run directory (created; a rerun resumes).",
                            required=True)
        flags.DEFINE_boolean("overwrite", False, "Replace a run directory that holds another run.")


def define_data_flags(default_dataset="digits", image_size=28, batch_size=64):
    with _group("data"):
        flags.DEFINE_string("dataset", default_dataset,
                            "digits | a TFDS name (mnist, fashion_mnist, cifar10, ...) | "
                            "idx:<path> | npz:<path> | folder:<dir>")
        flags.DEFINE_integer("image_size", image_size, "Square image side the pipeline yields.")
        flags.DEFINE_integer("channels", 1, "1 (grayscale) or 3 (RGB). A source with the other "
                             "count is converted (RGB to luma, gray repeated to RGB); a folder "
                             "may mix both; arrays with any other channel count are refused.")
        flags.DEFINE_integer("batch_size", batch_size, "Global batch size.")
        flags.DEFINE_string("split", "train", "TFDS split.")
        flags.DEFINE_string("data_dir", None, "TFDS data directory (a prepared one works offline).")
        flags.DEFINE_boolean("download", False, "Let TFDS download (needs network).")
        flags.DEFINE_integer("limit", None, "Use only the first N examples.")
        _enum("fit", "crop", FIT_MODES, "A folder of mixed-size images: center-crop each to a "
              "square (crop) or pad it with black (pad), then resize to --image_size.")


def define_model_flags(width=64, discriminator_width=None):
    with _group("model"):
        _enum("arch", "dcgan", ARCHITECTURES, "Generator/discriminator architecture.")
        flags.DEFINE_integer("latent_dim", 64, "Latent size.")
        flags.DEFINE_integer("width", width, "Generator width.")
        flags.DEFINE_integer("discriminator_width", discriminator_width or width,
                             "Discriminator width.")
        flags.DEFINE_boolean("spectral_norm", False, "Spectral normalization in the discriminator.")
        _enum("upsample", "transpose", UPSAMPLING_MODES, "dcgan generator upsampling: transpose "
              "(Conv2DTranspose), or nearest/bilinear resize then Conv2D (no checkerboard "
              "artifacts).")
        # No default: conditional exactly when the source has class labels (`conditioning_auto`).
        flags.DEFINE_boolean("conditional", None, "Class-conditional GAN: (z, label) -> image, "
                             "projection discriminator; needs a labelled dataset. Default: "
                             "conditional when the dataset has class labels (--noconditional: "
                             "never).")
        flags.DEFINE_integer("num_classes", 0, "--conditional: classes (0: from the labels).")
        flags.DEFINE_float("acgan_weight", 0.0, "--conditional: weight of an AC-GAN auxiliary "
                           "classifier loss (0: projection only).")
        _enum("class_vectors", "learned", CLASS_VECTORS, "Conditional generators: the per-class "
              "scales of z train with the GAN (learned) or stay at their random start (fixed: "
              "more variants of each class, but harder to compress).")


def define_train_flags(steps=2000, log_every=100):
    with _group("training"):
        _enum("loss", "non_saturating", LOSS_NAMES, "GAN loss.")
        flags.DEFINE_float("l1", 0.0, "L1 weight regularization.")
        flags.DEFINE_float("l2", 0.0, "L2 weight regularization.")
        flags.DEFINE_float("clip_value", 0.01, "Critic weight clipping (wasserstein).")
        flags.DEFINE_float("gradient_penalty_weight", 10.0, "WGAN-GP lambda.")
        # Defaults: the recipe chosen by bench_recipes.py (BUILD_NOTES.md, "Training recipe").
        # The library's dataclasses keep the old defaults, which is also what an old config.json
        # means.
        flags.DEFINE_float("r1_weight", 1.0, "R1 penalty gamma on real images (0: off; "
                           "--update=simultaneous needs 0).")
        flags.DEFINE_integer("r1_every", 16, "Lazy R1: apply it on every k-th step only, "
                             "weighted gamma * k (StyleGAN2's lazy regularization; 1: every "
                             "step).")
        flags.DEFINE_float("mode_seeking_weight", 0.0, "Mode-seeking term (MSGAN): penalizes two "
                           "latents of one class that give the same image (0: off).")
        flags.DEFINE_list("augment", [], "Differentiable augmentation of real and fake images in "
                          "both updates (DiffAugment): any of " + ", ".join(AUGMENT_POLICIES)
                          + "; empty: off.")
        _enum("update", "alternating", UPDATE_MODES, "alternating: n_critic D updates, then G; "
              "simultaneous: the TF DCGAN tutorial's one-pass step (n_critic=1, no gradient "
              "penalty, R1 or clipping).")
        flags.DEFINE_integer("steps", steps, "Generator steps.")
        flags.DEFINE_integer("n_critic", 1, "Discriminator steps per generator step.")
        flags.DEFINE_float("generator_lr", 2e-4, "Generator Adam learning rate.")
        flags.DEFINE_float("discriminator_lr", 2e-4, "Discriminator Adam learning rate.")
        flags.DEFINE_float("ema_decay", 0.999, "EMA decay of generator weights (0: off).")
        flags.DEFINE_integer("checkpoint_every", 500, "Steps between checkpoints and sample grids.")
        flags.DEFINE_integer("log_every", log_every, "Steps between progress lines.")
        flags.DEFINE_integer("seed", 0, "Random seed.")
        flags.DEFINE_boolean("deterministic", False, "Enable op determinism (bit-identical "
                             "reruns).")
        flags.DEFINE_boolean("check_numerics", True, "Stop on a NaN/Inf loss (every step) or "
                             "weight (every checkpoint, before saving it).")


def define_distribute_flags():
    with _group("training"):
        _enum("strategy", "default", STRATEGIES, "mirrored: this machine's GPUs; multi_worker: "
              "the cluster in TF_CONFIG; tpu: see --tpu.")
        flags.DEFINE_string("tpu", None, "--strategy=tpu: TPU name or grpc://host:port; 'local' on "
                            "a TPU VM; unset reads TPU_NAME.")
        flags.DEFINE_integer("cpu_devices", None, "--strategy=mirrored: mirror over N logical CPU "
                             "devices instead of the GPUs (tests the distributed path on a CPU).")


def make_strategy():
    """The strategy the distribute flags ask for; call it before any other TensorFlow work."""
    from tfgan_opt.training import distribute  # imports TensorFlow: only once the flags are valid

    return distribute.make_strategy(FLAGS.strategy, tpu_address=FLAGS.tpu,
                                    num_cpu_devices=FLAGS.cpu_devices)


def data_config():
    return DataConfig(source=FLAGS.dataset, image_size=FLAGS.image_size, channels=FLAGS.channels,
                      batch_size=FLAGS.batch_size, split=FLAGS.split, data_dir=FLAGS.data_dir,
                      download=FLAGS.download, seed=FLAGS.seed, limit=FLAGS.limit,
                      fit=FLAGS.fit)


def model_config():
    return ModelConfig(arch=FLAGS.arch, image_size=FLAGS.image_size, channels=FLAGS.channels,
                       latent_dim=FLAGS.latent_dim, width=FLAGS.width,
                       discriminator_width=FLAGS.discriminator_width,
                       spectral_norm=FLAGS.spectral_norm, upsample=FLAGS.upsample,
                       conditional=bool(FLAGS.conditional), num_classes=FLAGS.num_classes,
                       acgan_weight=FLAGS.acgan_weight, class_vectors=FLAGS.class_vectors)


def conditioning_auto():
    """Whether --conditional was left to the data (`pipeline.conditional.resolve_classes`)."""
    return FLAGS.conditional is None


def loss_config():
    return LossConfig(name=FLAGS.loss, clip_value=FLAGS.clip_value,
                      gradient_penalty_weight=FLAGS.gradient_penalty_weight, l1=FLAGS.l1,
                      l2=FLAGS.l2, r1_weight=FLAGS.r1_weight,
                      r1_every=FLAGS.r1_every, mode_seeking_weight=FLAGS.mode_seeking_weight)


def train_config():
    return TrainConfig(steps=FLAGS.steps, n_critic=FLAGS.n_critic, generator_lr=FLAGS.generator_lr,
                       discriminator_lr=FLAGS.discriminator_lr, ema_decay=FLAGS.ema_decay,
                       checkpoint_every=FLAGS.checkpoint_every, log_every=FLAGS.log_every,
                       seed=FLAGS.seed, deterministic=FLAGS.deterministic,
                       check_numerics=FLAGS.check_numerics, augment=tuple(FLAGS.augment),
                       update=FLAGS.update)


def pipeline_config(**sections):
    """The `PipelineConfig` of the data, model, loss and train flags, plus ``sections``."""
    return PipelineConfig(data=data_config(), model=model_config(), loss=loss_config(),
                          train=train_config(), **sections)


# The compression recipe of `experiments/compress.py` (and of `pipeline.py` where it does not
# override it, see `define_compress_flags`).
COMPRESSION_DEFAULTS = {"target_sparsity": 0.8, "sparsity_allocation": "uniform",
                        "layer_distill_weight": 0.0, "recovery_steps_per_removed": 0,
                        "recovery_lr_schedule": "constant", "recovery_ema_decay": 0.0,
                        "channel_macs_target": None}


def define_compress_flags(recovery_steps=500, qat_steps=300, num_samples=10_000, **recipe):
    """The compression, export and evaluation flags; ``recipe`` overrides `COMPRESSION_DEFAULTS`."""
    unknown = set(recipe) - set(COMPRESSION_DEFAULTS)
    assert not unknown, f"not compression defaults: {sorted(unknown)}"
    default = {**COMPRESSION_DEFAULTS, **recipe}
    with _group("compression"):
        flags.DEFINE_boolean("prune", True, "Prune the generator (False: QAT of the dense one).")
        flags.DEFINE_float("target_sparsity", default["target_sparsity"],
                           "Final fraction of zero weights, in [0, 1).")
        _enum("pruning_schedule", "polynomial", PRUNING_SCHEDULES, "tfmot pruning schedule.")
        _enum("prune_mode", "finetune", PRUNE_MODES, "finetune: prune a trained GAN; during: "
              "train a fresh GAN while pruning.")
        _enum("sparsity_allocation", default["sparsity_allocation"], SPARSITY_ALLOCATIONS,
              "uniform: every pruned layer to --target_sparsity; sensitivity: per-layer "
              "sparsities from the trained generator's sensitivity, --target_sparsity of the "
              "weights in all.")
        flags.DEFINE_integer("pruning_frequency", 50, "Steps between mask updates.")
        flags.DEFINE_string("block_m_by_n", None, "m:n structured sparsity, e.g. 2:4 "
                            "(Dense/Conv2D).")
        flags.DEFINE_integer("recovery_steps", recovery_steps, "Distillation fine-tune steps.")
        flags.DEFINE_float("recovery_lr", 1e-4, "Recovery learning rate.")
        flags.DEFINE_float("distill_weight", 10.0, "Weight of L1 on images (student vs dense).")
        flags.DEFINE_float("feature_distill_weight", 1.0, "Weight of L1 on discriminator features.")
        flags.DEFINE_float("adversarial_weight", 1.0, "Weight of the adversarial loss in recovery.")
        # Recovery schedule and inner-feature distillation (issue 13, bench_frontier.py).
        flags.DEFINE_float("layer_distill_weight", default["layer_distill_weight"],
                           "Weight of the MSE between the compressed generator's inner "
                           "activations (through learned 1x1 maps where widths differ) and the "
                           "dense one's (0: off).")
        flags.DEFINE_integer("recovery_steps_per_removed", default["recovery_steps_per_removed"],
                             "Recovery steps added per unit of the fraction removed (MACs for "
                             "channel pruning, weights for weight pruning).")
        _enum("recovery_lr_schedule", default["recovery_lr_schedule"], LR_SCHEDULES,
              "Recovery learning rate: constant, or cosine decay to 0.")
        flags.DEFINE_float("recovery_ema_decay", default["recovery_ema_decay"],
                           "EMA of the recovering generator's weights, shipped in its place "
                           "(0: off).")
        flags.DEFINE_integer("qat_steps", qat_steps, "Quantization-aware fine-tune steps.")
        flags.DEFINE_float("qat_lr", 5e-5, "QAT learning rate.")
        flags.DEFINE_boolean("preserve_sparsity", True, "Keep pruned weights at zero through QAT.")
        flags.DEFINE_float("channel_macs_target", default["channel_macs_target"],
                           "Remove whole generator channels until this fraction of the MACs is "
                           "left, in (0, 1]; 1 or unset: no channel pruning.")
        _enum("channel_criterion", "taylor", CHANNEL_CRITERIA, "Channel importance.")
    with _group("export"):
        # A comma-separated list of choices: absl has no enum list, so a validator checks it.
        flags.DEFINE_list("formats", list(EXPORT_FORMATS),
                          "Export formats (comma-separated): " + ", ".join(EXPORT_FORMATS))
        flags.register_validator(
            "formats", lambda names: set(names) <= set(EXPORT_FORMATS),
            "--formats takes a comma-separated subset of " + ", ".join(EXPORT_FORMATS))
        flags.DEFINE_integer("benchmark_batch", 64, "Also convert each TFLite variant at this "
                             "batch to time it there (0: batch 1 only).")
    with _group("evaluation"):
        flags.DEFINE_integer("num_samples", num_samples, "Generated samples per variant for "
                             "metrics.")
        flags.DEFINE_integer("benchmark_runs", 50, "Timed calls per variant and setting.")
        flags.DEFINE_integer("benchmark_rounds", 5, "Interleaved benchmark rounds.")
        flags.DEFINE_string("cache_dir", None, "Feature-extractor cache (default "
                            "<run_dir>/feature_cache).")
        flags.DEFINE_boolean("same_steps_reference", True, "Also train the dense GAN for the "
                             "steps the compression fine-tunes added, as the fair quality "
                             "reference.")
    define_feature_flags()


def define_feature_flags():
    with _group("evaluation"):
        flags.DEFINE_enum("features", "auto", list(FEATURE_SPACES),
                          "Feature space of the quality metrics: classifier (trained on the "
                          "source's labels), label_free (contrastive encoder trained on the "
                          "images alone), inception (--inception_weights); auto: inception if "
                          "weights are given, else classifier if the source has labels, else "
                          "label_free.")
        flags.DEFINE_string("inception_weights", None, "Local InceptionV3 (include_top=False) "
                            "HDF5 weights file for --features=inception.")


def _m_by_n():
    if not FLAGS.block_m_by_n:
        return None
    try:
        m, n = (int(v) for v in FLAGS.block_m_by_n.split(":"))
    except ValueError:
        raise ConfigError(f"block_m_by_n={FLAGS.block_m_by_n!r} must look like 2:4") from None
    return (m, n)


def compress_configs():
    """The compression-side configs: {prune (None if --noprune), recovery, quantize, export, evaluation}."""
    prune = PruneConfig(target_sparsity=FLAGS.target_sparsity, schedule=FLAGS.pruning_schedule,
                        mode=FLAGS.prune_mode, frequency=FLAGS.pruning_frequency,
                        allocation=FLAGS.sparsity_allocation,
                        block_m_by_n=_m_by_n()) if FLAGS.prune else None
    channels = (ChannelPruneConfig(macs_target=FLAGS.channel_macs_target,
                                   criterion=FLAGS.channel_criterion)
                if FLAGS.channel_macs_target not in (None, 1.0) else None)
    return {
        "channels": channels,
        "prune": prune,
        "recovery": RecoveryConfig(steps=FLAGS.recovery_steps, learning_rate=FLAGS.recovery_lr,
                                   distill_weight=FLAGS.distill_weight,
                                   feature_distill_weight=FLAGS.feature_distill_weight,
                                   adversarial_weight=FLAGS.adversarial_weight,
                                   layer_distill_weight=FLAGS.layer_distill_weight,
                                   steps_per_removed=FLAGS.recovery_steps_per_removed,
                                   lr_schedule=FLAGS.recovery_lr_schedule,
                                   ema_decay=FLAGS.recovery_ema_decay),
        "quantize": QuantizeConfig(steps=FLAGS.qat_steps, learning_rate=FLAGS.qat_lr,
                                   preserve_sparsity=FLAGS.preserve_sparsity),
        "export": ExportConfig(formats=tuple(FLAGS.formats), benchmark_batch=FLAGS.benchmark_batch,
                               seed=FLAGS.seed),
        "evaluation": EvaluationConfig(num_samples=FLAGS.num_samples,
                                       benchmark_runs=FLAGS.benchmark_runs,
                                       benchmark_rounds=FLAGS.benchmark_rounds,
                                       cache_dir=FLAGS.cache_dir, seed=FLAGS.seed,
                                       features=FLAGS.features,
                                       inception_weights=FLAGS.inception_weights,
                                       same_steps_reference=FLAGS.same_steps_reference),
    }
