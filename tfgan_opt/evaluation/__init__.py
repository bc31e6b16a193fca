"""Sample quality: domain feature extractors (`features`), the metric math on activations
(`metrics`), evaluating a generator of any kind, Keras or file (`generators`), and markdown
tables and reports (`markdown`).

Depends on core, data, models and (to run .tflite files) export.
"""
