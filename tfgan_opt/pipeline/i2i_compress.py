"""Compression and export stages of the image-to-image pipeline (placeholder, filled next)."""


def run_compress(run):
    raise NotImplementedError


def run_export(run):
    raise NotImplementedError
