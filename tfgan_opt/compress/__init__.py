"""Model -> model compression transforms: BatchNorm folding (`fold`), tfmot magnitude pruning
(`prune`), sparsity-preserving quantization-aware wrapping (`quantize`) and structured channel
pruning (`channels`). Nothing here trains: the fine-tunes that follow each transform are in
`tfgan_opt.pipeline.finetune`.

Depends on core, models and losses.
"""

import sys
import types


class _CallableCompress(types.ModuleType):
    """Makes ``tfgan_opt.compress(generator, dataset, run_dir, ...)`` the bring-your-own-model
    call while ``tfgan_opt.compress`` stays this subpackage (a package attribute and a submodule
    cannot share the name otherwise)."""

    def __call__(self, *args, **kwargs):
        # The whole pipeline sits above this layer: the package root (which may import every
        # layer) does the work; looked up, not imported, to keep imports pointing down.
        return sys.modules["tfgan_opt"].compress_model(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableCompress
