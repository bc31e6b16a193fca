"""Adversarial training: the `GANTrainer` GradientTape loop (`trainer`), its checkpoints and
summaries (`checkpointing`), distillation recovery of compressed generators (`recovery`), and
``tf.distribute`` strategies (`distribute`).

Depends on core, data, models, losses and (for pruning callbacks) compress; the pipeline builds
on it.
"""
