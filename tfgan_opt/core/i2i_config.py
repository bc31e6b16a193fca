"""Configuration of an image-to-image run (issue 16): task, data, models, two-phase training and
compression, in one frozen dataclass recorded in the run directory."""

import dataclasses
from typing import Optional

from tfgan_opt.core.config_base import _check, _check_choice, _Config
from tfgan_opt.core.names import I2I_TASKS

SHIP_GENERATORS = ("l1", "gan")


@dataclasses.dataclass(frozen=True)
class I2IConfig(_Config):
    """An image-to-image run: train on ``train_source``, evaluate on ``test_source``.

    Attributes:
      task: a degradation of `tfgan_opt.data.degrade` (``sr_x4``, ``denoise``, ...).
      train_source, test_source: image sources (``folder:<dir>`` of photos of any size, ...).
      patch_size: side of the clean training patches (a multiple of the scale, and of 8 for the
        U-Net tasks).
      batch_size: patches per step.
      width, blocks: generator size (SR: trunk channels and residual blocks; U-Net: full-
        resolution channels and ``blocks`` levels).
      discriminator_width: PatchGAN channels of its first layer.
      pretrain_steps, pretrain_lr: phase 1, L1 (PSNR-oriented), Adam with cosine decay.
      gan_steps, gan_lr, adversarial_weight: phase 2, L1 + ``adversarial_weight`` x the
        non-saturating adversarial loss against a PatchGAN, from the L1 generator.
      max_train_seconds: wall-clock cap of each training phase (None: no cap); a phase stopped
        by it records the steps it made.
      ship: which generator is compressed and shipped (``l1`` keeps PSNR, ``gan`` realism).
      channel_macs_target: fraction of MACs the channel pruning keeps (None: no channel pruning).
      target_sparsity: weight pruning target (0: none).
      recovery_steps, qat_steps, finetune_lr: the L1 fine-tunes after pruning and during QAT.
      tile: side of the exported file's input ``[1, tile, tile, 3]`` (the latency tile).
      fd_patch: side of the patches the patch-level FD compares.
      fd_encoder_steps: training steps of the label-free patch encoder.
      seed: data order, initialization and degradation noise.
      limit: use only the first ``limit`` training images.
    """

    task: str = "sr_x4"
    train_source: str = "folder:../shared/data/photos/train"
    test_source: str = "folder:../shared/data/photos/test/CSet5"
    patch_size: int = 96
    batch_size: int = 16
    width: int = 32
    blocks: int = 4
    discriminator_width: int = 32
    pretrain_steps: int = 3000
    pretrain_lr: float = 1e-3
    gan_steps: int = 1000
    gan_lr: float = 1e-4
    adversarial_weight: float = 0.01
    max_train_seconds: Optional[float] = None
    ship: str = "l1"
    channel_macs_target: Optional[float] = 0.5
    target_sparsity: float = 0.5
    recovery_steps: int = 500
    qat_steps: int = 300
    finetune_lr: float = 2e-4
    tile: int = 128
    fd_patch: int = 32
    fd_encoder_steps: int = 300
    seed: int = 0
    limit: Optional[int] = None

    def __post_init__(self):
        _check_choice("task", self.task, I2I_TASKS)
        _check_choice("ship", self.ship, SHIP_GENERATORS)
        scale = int(self.task[4:]) if self.task.startswith("sr_x") else 1
        multiple = scale if scale > 1 else 8
        _check(self.patch_size >= 8 and self.patch_size % multiple == 0,
               f"patch_size={self.patch_size} must be a multiple of {multiple} (task {self.task})")
        for name in ("batch_size", "width", "blocks", "discriminator_width", "tile", "fd_patch",
                     "fd_encoder_steps"):
            _check(getattr(self, name) >= 1, f"{name}={getattr(self, name)} must be positive")
        for name in ("pretrain_steps", "gan_steps", "recovery_steps", "qat_steps"):
            _check(getattr(self, name) >= 0, f"{name}={getattr(self, name)} must be >= 0")
        for name in ("pretrain_lr", "gan_lr", "finetune_lr"):
            _check(getattr(self, name) > 0, f"{name}={getattr(self, name)} must be positive")
        _check(self.adversarial_weight >= 0, f"adversarial_weight={self.adversarial_weight} "
               f"must be >= 0")
        _check(self.channel_macs_target is None or 0 < self.channel_macs_target <= 1,
               f"channel_macs_target={self.channel_macs_target} must be in (0, 1]")
        _check(0 <= self.target_sparsity < 1,
               f"target_sparsity={self.target_sparsity} must be in [0, 1)")
        _check(self.max_train_seconds is None or self.max_train_seconds > 0,
               f"max_train_seconds={self.max_train_seconds} must be positive")
        _check(self.limit is None or self.limit >= 1, f"limit={self.limit} must be positive")

    @property
    def scale(self):
        return int(self.task[4:]) if self.task.startswith("sr_x") else 1
