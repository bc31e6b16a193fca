"""Latency and size of exported generators.

Latency on a shared CPU drifts with other processes' load, so comparisons are made between
variants timed in the same process, interleaved: `time_runners` runs a few calls of each variant
in turn, round after round, and reports per-variant medians. Only ratios between variants of one
run are meaningful; absolute milliseconds are not.
"""

import gzip
import os
import time

import numpy as np
import tensorflow as tf

from tfgan_opt.export.litert import is_label_input, make_interpreter, quantize, read_tflite

GZIP_LEVEL = 9


def tflite_runner(path, num_threads=1, batch_size=1):
    """Prepares a LiteRT interpreter (default XNNPACK delegate) and returns its timed call.

    Args:
      path: ``.tflite`` generator.
      num_threads: interpreter threads.
      batch_size: batch to run. A file converted with a fixed batch runs only at that batch:
        convert a variant (``export.convert_tflite(..., batch_size=64)``) for another one.

    Returns:
      A function of no arguments that runs one ``invoke`` on a fixed random batch.

    Raises:
      ModelFileError: ``path`` is not a TFLite model.
      ValueError: the file cannot run at ``batch_size``.
    """
    content = read_tflite(path)
    interpreter, delegate = make_interpreter(content, num_threads)
    details = _z_input(interpreter)
    if details["shape"][0] != batch_size:
        shape = [batch_size] + list(details["shape"][1:])
        try:
            interpreter, resized_delegate = make_interpreter(content, num_threads, shape)
            details = _z_input(interpreter)
            _fill_input(interpreter, details)
            interpreter.invoke()
            output_batch = interpreter.get_output_details()[0]["shape"][0]
        except (RuntimeError, ValueError) as error:
            raise _fixed_batch_error(path, batch_size) from error
        # Timing the builtin kernels in place of XNNPACK, or a graph with its batch baked in,
        # would measure something else than what was asked.
        if resized_delegate != delegate or output_batch != batch_size:
            raise _fixed_batch_error(path, batch_size)
    _fill_input(interpreter, details)
    return interpreter.invoke


def _z_input(interpreter):
    inputs = interpreter.get_input_details()
    return next((d for d in inputs if not is_label_input(d)), inputs[0])


def _fill_input(interpreter, details):
    z = np.random.default_rng(0).standard_normal(details["shape"]).astype(np.float32)
    interpreter.set_tensor(details["index"], quantize(z, details))
    for other in interpreter.get_input_details():
        if other["index"] != details["index"]:  # a conditional file's label: class 0
            interpreter.set_tensor(other["index"], np.zeros(other["shape"], other["dtype"]))


def _fixed_batch_error(path, batch_size):
    return ValueError(f"{path} does not run at batch {batch_size} (its batch is fixed); convert "
                      f"a batch-{batch_size} variant with export.convert_tflite")


def keras_runner(generator, batch_size=1):
    """Returns a function running ``generator`` once as a traced `tf.function` on a fixed batch.

    Args:
      generator: `Generator`.
      batch_size: batch of latents.
    """
    z = tf.random.stateless_normal([batch_size, generator.latent_dim], seed=[0, 0])
    if generator.conditional:
        z = (z, tf.zeros([batch_size], tf.int32))
    function = tf.function(lambda latents: generator(latents, training=False))
    function(z)  # traces once here, so timed calls never include tracing.
    return lambda: function(z)


def _stats(times_by_round):
    times_ms = 1000.0 * np.concatenate(times_by_round)
    return {"median_ms": float(np.median(times_ms)), "p5_ms": float(np.percentile(times_ms, 5)),
            "p95_ms": float(np.percentile(times_ms, 95)), "runs": int(times_ms.size),
            "round_medians_ms": [float(1000.0 * np.median(t)) for t in times_by_round]}


def time_runners(runners, runs=50, warmup=5, rounds=5):
    """Times several variants interleaved so that load changes hit all of them alike.

    Args:
      runners: dict name -> function of no arguments (`tflite_runner`, `keras_runner`).
      runs: timed calls per variant in total, spread over ``rounds``.
      warmup: untimed calls per variant before the first round.
      rounds: each round times ``runs / rounds`` calls of every variant, the order rotating
        from round to round.

    Returns:
      dict name -> {"median_ms", "p5_ms", "p95_ms", "runs", "round_medians_ms"}. The
      per-round medians let callers form ratios between variants round by round: memory-bound
      float files slow down by up to 3x when neighbours on a shared machine fill the L3 cache,
      for minutes at a time, and a ratio within one round compares like with like.
    """
    if runs < 1 or rounds < 1 or warmup < 0:
        raise ValueError(f"runs={runs} and rounds={rounds} must be positive, warmup={warmup} >= 0")
    names = list(runners)
    for name in names:
        for _ in range(warmup):
            runners[name]()
    times = {name: [] for name in names}
    per_round = max(1, runs // rounds)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_time_calls(runners[name], per_round))
    return {name: _stats(times[name]) for name in names}


def _time_calls(run, calls):
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        run()
        times[i] = time.perf_counter() - start
    return times


def benchmark_tflite(path, num_threads=1, batch_size=1, runs=50, warmup=5):
    """Latency of one ``.tflite`` file (see `tflite_runner`).

    Returns:
      {"median_ms", "p5_ms", "p95_ms", "runs", "round_medians_ms"}: milliseconds per
      ``invoke`` of the whole batch.
    """
    runner = tflite_runner(path, num_threads, batch_size)
    return time_runners({"tflite": runner}, runs=runs, warmup=warmup, rounds=1)["tflite"]


def benchmark_keras(generator, batch_size=1, runs=50, warmup=5):
    """Latency of the Keras generator as a `tf.function` (TensorFlow's default thread pools).

    Returns:
      {"median_ms", "p5_ms", "p95_ms", "runs", "round_medians_ms"}: milliseconds per call
      of the whole batch.
    """
    runner = keras_runner(generator, batch_size)
    return time_runners({"keras": runner}, runs=runs, warmup=warmup, rounds=1)["keras"]


def file_sizes(path):
    """Size of a file (or of all files under a directory), raw and gzipped.

    Pruned weights only shrink a file once it is compressed, so both numbers are reported.

    Args:
      path: a file or a directory (e.g. a SavedModel).

    Returns:
      {"bytes": int, "gzip_bytes": int}; for a directory, sums over its files, each gzipped
      separately at level 9 in memory.
    """
    if os.path.isdir(path):
        files = sorted(os.path.join(root, name) for root, _, names in os.walk(path)
                       for name in names)
    else:
        files = [path]
    raw = gzipped = 0
    for name in files:
        with open(name, "rb") as f:
            data = f.read()
        raw += len(data)
        gzipped += len(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))
    return {"bytes": raw, "gzip_bytes": gzipped}
