"""Frozen, validated configuration objects, one per pipeline stage.

Each dataclass checks its values on construction and raises `ConfigError` naming the bad value, so
a typo or an out-of-range number fails before any work starts. ``to_dict``/``from_dict`` round-trip
through JSON (run directories record the configuration they were made with).
"""

import dataclasses
from typing import Optional, Tuple

from tfgan_opt.core.channel_config import ChannelPruneConfig  # noqa: F401  (re-exported)
from tfgan_opt.core.config_base import _check, _check_choice, _Config
# The names every registry is keyed by (cross-checked in tests/test_registries.py); the flags'
# choices read them too. STRATEGIES is re-exported for the scripts.
from tfgan_opt.core.names import (ARCHITECTURES, AUGMENT_POLICIES, CHANNEL_CRITERIA,  # noqa: F401
                                  CLASS_VECTORS, EXPORT_FORMATS, FEATURE_SPACES, LOSS_NAMES,
                                  PRUNE_MODES, PRUNING_SCHEDULES, STRATEGIES, UPDATE_MODES,
                                  UPSAMPLING_MODES, LR_SCHEDULES, SPARSITY_ALLOCATIONS, FIT_MODES)


@dataclasses.dataclass(frozen=True)
class DataConfig(_Config):
    """Where images come from and how they are batched.

    Attributes:
      source: ``digits`` (scikit-learn's 8x8 digits, offline), a TFDS name (``mnist``,
        ``fashion_mnist``, ``cifar10``, ...), ``idx:<path>``, ``npz:<path>`` or ``folder:<dir>``.
      image_size: side of the square images the pipeline yields (resized if needed).
      channels: 1 (grayscale) or 3 (RGB); sources are converted to it.
      batch_size: global batch size.
      split: TFDS split (``train``, ``test``, ``train[:10%]``...); ignored by local sources.
      data_dir: TFDS data directory (an already prepared one works offline).
      download: let TFDS download; off by default because offline it retries for minutes.
      shuffle_buffer: shuffle buffer size (0 disables shuffling).
      seed: shuffle seed.
      limit: keep only the first ``limit`` examples (None keeps all).
      npz_key: array name inside an NPZ file (None: ``x``, ``images`` or ``x_train``, whichever exists).
      fit: how a folder of mixed-size images becomes square: ``crop`` (center square) or ``pad``
        (black borders), then resized to ``image_size``.
    """

    source: str = "digits"
    image_size: int = 28
    channels: int = 1
    batch_size: int = 64
    split: str = "train"
    data_dir: Optional[str] = None
    download: bool = False
    shuffle_buffer: int = 10_000
    seed: int = 0
    limit: Optional[int] = None
    npz_key: Optional[str] = None
    fit: str = "crop"

    def __post_init__(self):
        _check(bool(self.source), "source must not be empty")
        _check_choice("fit", self.fit, FIT_MODES)
        _check(self.image_size >= 4, f"image_size={self.image_size} must be at least 4")
        _check(self.channels in (1, 3), f"channels={self.channels} must be 1 or 3")
        _check(self.batch_size >= 1, f"batch_size={self.batch_size} must be positive")
        _check(self.shuffle_buffer >= 0, f"shuffle_buffer={self.shuffle_buffer} must be >= 0")
        _check(self.limit is None or self.limit >= 1, f"limit={self.limit} must be positive")


@dataclasses.dataclass(frozen=True)
class ModelConfig(_Config):
    """Generator and discriminator architecture.

    Attributes:
      arch: ``dcgan`` (Dense -> Conv2DTranspose stack -> tanh; strided Conv2D critic) or ``mlp``.
      image_size: output side; ``dcgan`` needs a multiple of 4.
      channels: 1 or 3.
      latent_dim: size of z ~ N(0, I).
      width: generator width (channels of the first feature map for dcgan, hidden units / 4 for mlp).
      discriminator_width: same for the discriminator.
      spectral_norm: spectral normalization on the discriminator's weights (Miyato et al. 2018).
      upsample: how the dcgan generator upsamples: ``transpose`` (Conv2DTranspose) or a
        resize-convolution, ``nearest`` / ``bilinear`` UpSampling2D then Conv2D (Odena et al. 2016,
        "Deconvolution and Checkerboard Artifacts"), free of transpose-convolution checkerboards.
      conditional: class-conditional networks (z, label) -> image, projection discriminator
        (`tfgan_opt.models.conditional`); needs a labelled source.
      num_classes: classes of a conditional model; 0 reads it from the source's labels.
      acgan_weight: with ``conditional``, weight of an AC-GAN auxiliary classifier's cross-entropy
        (Odena et al. 2017) added to both networks' losses; 0: projection only.
      class_vectors: with ``conditional``, how the per-class scales of z are set in GAN training:
        ``learned`` (trained with the generator) or ``fixed`` (random N(0, 1), never trained by
        the GAN: more variants of each class, but a harder network to compress). Recovery
        fine-tunes train them either way. See `tfgan_opt.models.conditional`.
    """

    arch: str = "dcgan"
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 64
    width: int = 64
    discriminator_width: int = 64
    spectral_norm: bool = False
    upsample: str = "transpose"
    conditional: bool = False
    num_classes: int = 0
    acgan_weight: float = 0.0
    class_vectors: str = "learned"

    def __post_init__(self):
        _check_choice("arch", self.arch, ARCHITECTURES)
        _check(self.num_classes >= 0 and self.acgan_weight >= 0,
               f"num_classes={self.num_classes} and acgan_weight={self.acgan_weight} must be >= 0")
        _check(self.conditional or not (self.num_classes or self.acgan_weight),
               "num_classes and acgan_weight need conditional=True")
        _check_choice("upsample", self.upsample, UPSAMPLING_MODES)
        _check_choice("class_vectors", self.class_vectors, CLASS_VECTORS)
        _check(self.channels in (1, 3), f"channels={self.channels} must be 1 or 3")
        _check(self.latent_dim >= 1, f"latent_dim={self.latent_dim} must be positive")
        _check(self.width >= 4, f"width={self.width} must be at least 4")
        _check(self.discriminator_width >= 4,
               f"discriminator_width={self.discriminator_width} must be at least 4")
        _check(self.image_size >= 4, f"image_size={self.image_size} must be at least 4")
        if self.arch == "dcgan":
            _check(self.image_size % 4 == 0,
                   f"image_size={self.image_size}: the dcgan architecture upsamples 4x, "
                   f"so it needs a multiple of 4 (e.g. {max(4, self.image_size // 4 * 4)})")


@dataclasses.dataclass(frozen=True)
class LossConfig(_Config):
    """GAN objective and regularization.

    Attributes:
      name: one of ``LOSS_NAMES``.
      clip_value: weight clipping bound for ``wasserstein`` (Arjovsky et al. 2017).
      gradient_penalty_weight: lambda of ``wgan_gp`` (Gulrajani et al. 2017).
      l1: L1 weight regularization strength, on both networks' kernels.
      l2: L2 weight regularization strength, on both networks' kernels.
      r1_weight: gamma of the R1 penalty gamma / 2 * ||grad_x D(x)||^2 on (augmented) real images
        (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?"); 0: off.
      r1_every: apply R1 on every k-th step only, weighted gamma * k (lazy regularization, Karras
        et al. 2020, StyleGAN2): the same average pull for 1/k of its double backward pass.
        Stored as 1 without R1, where it means nothing (so runs without R1 compare equal).
      mode_seeking_weight: weight of the mode-seeking term in the generator loss (MSGAN, Mao et
        al. 2019): 1 / (mean|G(z1) - G(z2)| / mean|z1 - z2|) over pairs of the batch that share
        their class; it penalizes two latents that give the same image. 0: off.
    """

    name: str = "non_saturating"
    clip_value: float = 0.01
    gradient_penalty_weight: float = 10.0
    l1: float = 0.0
    l2: float = 0.0
    r1_weight: float = 0.0
    r1_every: int = 1
    mode_seeking_weight: float = 0.0

    def __post_init__(self):
        _check_choice("loss", self.name, LOSS_NAMES)
        _check(self.r1_weight >= 0, f"r1_weight={self.r1_weight} must be >= 0")
        _check(self.r1_every >= 1, f"r1_every={self.r1_every} must be positive")
        if not self.r1_weight:
            object.__setattr__(self, "r1_every", 1)
        _check(self.clip_value > 0, f"clip_value={self.clip_value} must be positive")
        _check(self.gradient_penalty_weight >= 0,
               f"gradient_penalty_weight={self.gradient_penalty_weight} must be >= 0")
        _check(self.l1 >= 0, f"l1={self.l1} must be >= 0")
        _check(self.l2 >= 0, f"l2={self.l2} must be >= 0")
        _check(self.mode_seeking_weight >= 0,
               f"mode_seeking_weight={self.mode_seeking_weight} must be >= 0")


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Config):
    """The adversarial training loop.

    Attributes:
      steps: generator steps to train for (the run stops at this global step).
      n_critic: discriminator steps per generator step.
      generator_lr, discriminator_lr, beta_1, beta_2: Adam settings (DCGAN defaults).
      ema_decay: decay of an exponential moving average of the generator's weights (0 disables).
      checkpoint_every: steps between checkpoints (and sample grids).
      log_every: steps between progress lines and TensorBoard scalars.
      keep_checkpoints: checkpoints kept on disk.
      seed: seeds weights, noise and shuffling.
      deterministic: enable TensorFlow op determinism (bit-identical reruns on CPU).
      check_numerics: stop with `NonFiniteError` on a NaN/Inf loss or weight.
      augment: differentiable augmentations of real and fake images in both updates, a tuple of
        ``AUGMENT_POLICIES`` names (DiffAugment, Zhao et al. 2020); empty: off. Stored in the
        canonical order color, translation, cutout (the order they are applied in).
      update: ``alternating`` (n_critic discriminator updates, then a generator update with a new
        generator pass) or ``simultaneous`` (the TensorFlow DCGAN tutorial's step: one generator
        and one discriminator pass, both gradients from it, against the pre-update networks);
        simultaneous needs n_critic 1 and no gradient penalty, R1 or weight clipping.
    """

    steps: int = 2000
    n_critic: int = 1
    generator_lr: float = 2e-4
    discriminator_lr: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    ema_decay: float = 0.0
    checkpoint_every: int = 500
    log_every: int = 100
    keep_checkpoints: int = 2
    seed: int = 0
    deterministic: bool = False
    check_numerics: bool = True
    augment: Tuple[str, ...] = ()
    update: str = "alternating"

    def __post_init__(self):
        augment = (self.augment.replace(" ", "").split(",") if isinstance(self.augment, str)
                   else list(self.augment))
        augment = [name for name in augment if name]
        for name in augment:
            _check_choice("augment", name, AUGMENT_POLICIES)
        _check(len(set(augment)) == len(augment), f"augment={augment} names a transform twice")
        object.__setattr__(self, "augment", tuple(p for p in AUGMENT_POLICIES if p in augment))
        _check_choice("update", self.update, UPDATE_MODES)
        _check(self.update == "alternating" or self.n_critic == 1,
               f"update='simultaneous' takes one discriminator pass per step, so it needs "
               f"n_critic=1, not {self.n_critic}")
        for name in ("steps", "n_critic", "generator_lr", "discriminator_lr", "checkpoint_every",
                     "log_every", "keep_checkpoints"):
            _check(getattr(self, name) > 0, f"{name}={getattr(self, name)} must be positive")
        for name in ("beta_1", "beta_2"):
            _check(0 <= getattr(self, name) < 1, f"{name}={getattr(self, name)} must be in [0, 1)")
        _check(0 <= self.ema_decay < 1, f"ema_decay={self.ema_decay} must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class PruneConfig(_Config):
    """Magnitude pruning with tfmot schedules.

    Attributes:
      target_sparsity: final fraction of zero weights in each pruned layer, in [0, 1).
      initial_sparsity: starting sparsity of the polynomial schedule.
      schedule: ``polynomial`` (PolynomialDecay) or ``constant`` (ConstantSparsity).
      begin_step, end_step: schedule span in pruning steps (end_step -1: the last step).
      frequency: steps between mask updates.
      block_m_by_n: (m, n) for m-by-n structured sparsity (e.g. (2, 4)); None for unstructured.
      prune_discriminator: prune the discriminator too (during-training mode).
      mode: ``during`` (prune while training the GAN) or ``finetune`` (prune a trained GAN).
      allocation: ``uniform`` (every pruned layer to ``target_sparsity``) or ``sensitivity``
        (per-layer sparsities from the trained generator's sensitivity that remove
        ``target_sparsity`` of the pruned layers' weights in all; `compress.allocation`).
    """

    target_sparsity: float = 0.8
    initial_sparsity: float = 0.0
    schedule: str = "polynomial"
    begin_step: int = 0
    end_step: int = -1
    frequency: int = 50
    block_m_by_n: Optional[Tuple[int, int]] = None
    prune_discriminator: bool = False
    mode: str = "finetune"
    allocation: str = "uniform"

    def __post_init__(self):
        _check(0 <= self.target_sparsity < 1,
               f"target_sparsity={self.target_sparsity} must be in [0, 1)")
        _check(0 <= self.initial_sparsity <= self.target_sparsity,
               f"initial_sparsity={self.initial_sparsity} must be in [0, target_sparsity]")
        _check_choice("schedule", self.schedule, PRUNING_SCHEDULES)
        _check_choice("mode", self.mode, PRUNE_MODES)
        _check_choice("allocation", self.allocation, SPARSITY_ALLOCATIONS)
        _check(self.allocation == "uniform" or (self.mode == "finetune" and
                                                self.block_m_by_n is None),
               f"allocation={self.allocation!r} measures a trained generator: it needs "
               "mode='finetune' and unstructured sparsity (no block_m_by_n)")
        _check(self.begin_step >= 0, f"begin_step={self.begin_step} must be >= 0")
        _check(self.end_step == -1 or self.end_step > self.begin_step,
               f"end_step={self.end_step} must be -1 or greater than begin_step")
        _check(self.frequency >= 1, f"frequency={self.frequency} must be positive")
        if self.block_m_by_n is not None:
            m, n = self.block_m_by_n
            _check(0 < m < n, f"block_m_by_n={self.block_m_by_n} needs 0 < m < n")


@dataclasses.dataclass(frozen=True)
class QuantizeConfig(_Config):
    """Quantization-aware training of the generator.

    Attributes:
      steps: QAT fine-tune steps (0: convert the float model directly, post-training only).
      learning_rate: Adam learning rate during QAT.
      preserve_sparsity: keep pruned weights at zero through QAT.
    """

    steps: int = 300
    learning_rate: float = 5e-5
    preserve_sparsity: bool = True

    def __post_init__(self):
        _check(self.steps >= 0, f"steps={self.steps} must be >= 0")
        _check(self.learning_rate > 0, f"learning_rate={self.learning_rate} must be positive")


@dataclasses.dataclass(frozen=True)
class ExportConfig(_Config):
    """Which files to export and how to check them.

    Attributes:
      formats: subset of ``EXPORT_FORMATS``.
      representative_samples: latent vectors used to calibrate full-integer quantization.
      verify_samples: latent vectors used to compare each file with the Keras generator.
      seed: seed of those latent vectors.
      benchmark_batch: also convert each TFLite variant at this batch, to time it there
        (0: batch 1 only).
    """

    formats: Tuple[str, ...] = EXPORT_FORMATS
    representative_samples: int = 256
    verify_samples: int = 64
    seed: int = 0
    benchmark_batch: int = 64

    def __post_init__(self):
        _check(len(self.formats) > 0, "formats must name at least one export format")
        for fmt in self.formats:
            _check_choice("format", fmt, EXPORT_FORMATS)
        _check(self.representative_samples >= 1,
               f"representative_samples={self.representative_samples} must be positive")
        _check(self.verify_samples >= 1, f"verify_samples={self.verify_samples} must be positive")
        _check(self.benchmark_batch >= 0, f"benchmark_batch={self.benchmark_batch} must be >= 0")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig(_Config):
    """How the pipeline measures the variants it produced.

    Attributes:
      num_samples: generated images per variant for the quality metrics.
      benchmark_runs: timed calls per variant and setting (interleaved over ``benchmark_rounds``).
      benchmark_rounds: interleaved rounds of the latency benchmark.
      cache_dir: feature-extractor cache (None: ``<run_dir>/feature_cache``).
      seed: seed of the evaluation latents.
      features: feature space of the metrics, one of ``FEATURE_SPACES`` (``auto``, the default,
        is what runs recorded before this field did on a labelled source: the classifier).
      inception_weights: a local InceptionV3 (include_top=False) HDF5 weights file, for
        ``features`` ``inception`` (or ``auto``).
      same_steps_reference: train the dense GAN on as long as compression fine-tunes, as the
        fair quality reference (`tfgan_opt.pipeline.reference`).
    """

    num_samples: int = 10_000
    benchmark_runs: int = 50
    benchmark_rounds: int = 5
    cache_dir: Optional[str] = None
    seed: int = 0
    features: str = "auto"
    inception_weights: Optional[str] = None
    same_steps_reference: bool = True

    def __post_init__(self):
        _check(self.num_samples >= 2, f"num_samples={self.num_samples} must be at least 2")
        _check(self.benchmark_runs >= 1, f"benchmark_runs={self.benchmark_runs} must be positive")
        _check(1 <= self.benchmark_rounds <= self.benchmark_runs,
               f"benchmark_rounds={self.benchmark_rounds} must be in [1, benchmark_runs]")
        _check_choice("features", self.features, FEATURE_SPACES)
        _check(self.features in ("auto", "inception") or not self.inception_weights,
               f"features={self.features} does not use inception_weights; drop one of them")
        _check(self.features != "inception" or bool(self.inception_weights),
               "features=inception needs inception_weights (a local InceptionV3 weights file)")
