"""Flags shared by the experiment scripts, and the config objects built from them.

Flags only ever live under experiments/; the library receives config objects.
"""

from absl import flags

from tfgan_opt import DataConfig, LossConfig, ModelConfig, TrainConfig

FLAGS = flags.FLAGS


def define_run_flags():
    flags.DEFINE_string("run_dir", None, "Run directory (created; a rerun resumes).", required=True)
    flags.DEFINE_boolean("overwrite", False, "Replace a run directory that holds another run.")


def define_data_flags(default_dataset="digits", image_size=28, batch_size=64):
    flags.DEFINE_string("dataset", default_dataset,
                        "digits | a TFDS name (mnist, fashion_mnist, cifar10, ...) | idx:<path> | "
                        "npz:<path> | folder:<dir>")
    flags.DEFINE_integer("image_size", image_size, "Square image side the pipeline yields.")
    flags.DEFINE_integer("channels", 1, "1 (grayscale) or 3 (RGB). A source with the other count "
                         "is converted (RGB to luma, gray repeated to RGB); a folder may mix "
                         "both; arrays with any other channel count are refused.")
    flags.DEFINE_integer("batch_size", batch_size, "Global batch size.")
    flags.DEFINE_string("split", "train", "TFDS split.")
    flags.DEFINE_string("data_dir", None, "TFDS data directory (a prepared one works offline).")
    flags.DEFINE_boolean("download", False, "Let TFDS download (needs network).")
    flags.DEFINE_integer("limit", None, "Use only the first N examples.")


def define_model_flags(width=64):
    flags.DEFINE_string("arch", "dcgan", "dcgan | mlp")
    flags.DEFINE_integer("latent_dim", 64, "Latent size.")
    flags.DEFINE_integer("width", width, "Generator width.")
    flags.DEFINE_integer("discriminator_width", width, "Discriminator width.")
    flags.DEFINE_boolean("spectral_norm", False, "Spectral normalization in the discriminator.")


def define_train_flags(steps=2000):
    flags.DEFINE_string("loss", "non_saturating",
                        "non_saturating | minimax | wasserstein | wgan_gp | hinge")
    flags.DEFINE_float("l1", 0.0, "L1 weight regularization.")
    flags.DEFINE_float("l2", 0.0, "L2 weight regularization.")
    flags.DEFINE_float("clip_value", 0.01, "Critic weight clipping (wasserstein).")
    flags.DEFINE_float("gradient_penalty_weight", 10.0, "WGAN-GP lambda.")
    flags.DEFINE_integer("steps", steps, "Generator steps.")
    flags.DEFINE_integer("n_critic", 1, "Discriminator steps per generator step.")
    flags.DEFINE_float("generator_lr", 2e-4, "Generator Adam learning rate.")
    flags.DEFINE_float("discriminator_lr", 2e-4, "Discriminator Adam learning rate.")
    flags.DEFINE_float("ema_decay", 0.0, "EMA decay of generator weights (0: off).")
    flags.DEFINE_integer("checkpoint_every", 500, "Steps between checkpoints and sample grids.")
    flags.DEFINE_integer("log_every", 100, "Steps between progress lines.")
    flags.DEFINE_integer("seed", 0, "Random seed.")
    flags.DEFINE_boolean("deterministic", False, "Enable op determinism (bit-identical reruns).")
    flags.DEFINE_boolean("check_numerics", True, "Stop on a NaN/Inf loss (every step) or weight "
                         "(every checkpoint, before saving it).")


def data_config():
    return DataConfig(source=FLAGS.dataset, image_size=FLAGS.image_size, channels=FLAGS.channels,
                      batch_size=FLAGS.batch_size, split=FLAGS.split, data_dir=FLAGS.data_dir,
                      download=FLAGS.download, seed=FLAGS.seed, limit=FLAGS.limit)


def model_config():
    return ModelConfig(arch=FLAGS.arch, image_size=FLAGS.image_size, channels=FLAGS.channels,
                       latent_dim=FLAGS.latent_dim, width=FLAGS.width,
                       discriminator_width=FLAGS.discriminator_width,
                       spectral_norm=FLAGS.spectral_norm)


def loss_config():
    return LossConfig(name=FLAGS.loss, clip_value=FLAGS.clip_value,
                      gradient_penalty_weight=FLAGS.gradient_penalty_weight, l1=FLAGS.l1,
                      l2=FLAGS.l2)


def train_config():
    return TrainConfig(steps=FLAGS.steps, n_critic=FLAGS.n_critic, generator_lr=FLAGS.generator_lr,
                       discriminator_lr=FLAGS.discriminator_lr, ema_decay=FLAGS.ema_decay,
                       checkpoint_every=FLAGS.checkpoint_every, log_every=FLAGS.log_every,
                       seed=FLAGS.seed, deterministic=FLAGS.deterministic,
                       check_numerics=FLAGS.check_numerics)
