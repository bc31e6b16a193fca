"""The bottom layer: configuration, errors, run directories and atomic files, images on disk, the
one Keras import, and naming helpers. Imports nothing else from tfgan_opt.

Modules: `config` (frozen configs, one per stage, and `PipelineConfig`), `errors`, `artifacts`
(atomic writes), `rundir` (run directories and stage records), `images` (sample grids),
`compat` (``keras`` is tf_keras), `naming` (slugs, one-line error reasons, seeded latents).
"""
