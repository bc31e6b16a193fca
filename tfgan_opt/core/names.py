"""The names of every interchangeable part, defined once: configs validate against them, flags
offer them as choices, and each registry is keyed by them (tests/test_registries.py)."""

ARCHITECTURES = ("dcgan", "mlp")
LOSS_NAMES = ("non_saturating", "minimax", "wasserstein", "wgan_gp", "hinge")
PRUNING_SCHEDULES = ("polynomial", "constant")
PRUNE_MODES = ("finetune", "during")
SPARSITY_ALLOCATIONS = ("uniform", "sensitivity")
EXPORT_FORMATS = ("saved_model", "float32", "float16", "dynamic_range", "int8", "int8_float_io")
CHANNEL_CRITERIA = ("l1", "bn_scale", "activation", "taylor")
FEATURE_SPACES = ("auto", "classifier", "label_free", "inception")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
UPSAMPLING_MODES = ("transpose", "nearest", "bilinear")
# How a conditional generator's class vectors (the per-class scales of z) are set (issue 18).
CLASS_VECTORS = ("fixed", "learned")
AUGMENT_POLICIES = ("color", "translation", "cutout")
UPDATE_MODES = ("alternating", "simultaneous")
LR_SCHEDULES = ("constant", "cosine")
# How a folder of mixed-size images is brought to one square size (issue 16).
FIT_MODES = ("crop", "pad")
# Image-to-image tasks: the degradation that makes a model's input from a clean image (issue 16).
I2I_TASKS = ("sr_x2", "sr_x4", "denoise", "inpaint", "colorize")
