"""Evaluation and report of the image-to-image pipeline (placeholder, filled next)."""


def run_evaluate(run):
    raise NotImplementedError
