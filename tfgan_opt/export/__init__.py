"""Deployable files: TFLite conversion and verification (`tflite`), running exported files in
LiteRT (`litert`), and latency and size measurement (`benchmark`).

Depends on core and models.
"""
