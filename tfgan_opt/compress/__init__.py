"""Model -> model compression transforms: BatchNorm folding (`fold`), tfmot magnitude pruning
(`prune`), sparsity-preserving quantization-aware wrapping (`quantize`) and structured channel
pruning (`channels`). Nothing here trains: the fine-tunes that follow each transform are in
`tfgan_opt.pipeline.finetune`.

Depends on core, models and losses.
"""
