"""The flag-free pipeline over one run directory: dataset -> trainer -> compressed model -> exported
file -> evaluation -> report.

`stages` runs each stage once and records it; `finetune` holds the compression fine-tunes (prune,
channels, QAT, one argument order); `variants` owns the stage, model and variant names and runs
export, benchmark and evaluation per variant; `report` writes report.md. The top layer: nothing in
tfgan_opt imports it.
"""
