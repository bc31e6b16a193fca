"""Reading, inspecting and running exported ``.tflite`` generators with LiteRT.

Files are run the way a phone runs them: a fresh ``ai_edge_litert`` interpreter with its default
XNNPACK delegate. Where XNNPACK refuses a file (LiteRT 2.3 fails to prepare int8 files with sparse
weights) the file is run by the builtin kernels instead and the caller is told so, never silently.
"""

import numpy as np

from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.core.naming import sample_latents

# Bytes 4-8 of every TFLite flatbuffer (the schema's file_identifier).
_TFLITE_IDENTIFIER = b"TFL3"
XNNPACK = "XNNPACK"
_EDGE_OPS = ("QUANTIZE", "DEQUANTIZE")


def read_tflite(path):
    """Reads a ``.tflite`` file and checks that it is one.

    Args:
      path: file path.

    Returns:
      The file's bytes.

    Raises:
      ModelFileError: the file is missing or is not a TFLite flatbuffer.
    """
    try:
        with open(path, "rb") as f:
            content = f.read()
    except OSError as error:
        raise ModelFileError(f"cannot read TFLite file {path}: {error.strerror}") from error
    if len(content) < 8 or content[4:8] != _TFLITE_IDENTIFIER:
        raise ModelFileError(f"{path} is not a TFLite model (no TFL3 flatbuffer identifier)")
    return content


def _schema():
    # TensorFlow's own copy of the flatbuffer schema: no extra `tflite` package needed.
    from tensorflow.lite.python import schema_py_generated
    return schema_py_generated


def _enum_names(enum_class):
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def describe_tflite(content):
    """Lists a TFLite model's operators and input/output tensors from its flatbuffer.

    Args:
      content: the model's bytes.

    Returns:
      A dict with ``ops`` (operator names in execution order, e.g. ``["FULLY_CONNECTED", ...]``),
      ``float_ops`` (the operators that read or write a float tensor, apart from a QUANTIZE fed
      by a model input or a DEQUANTIZE writing a model output: the float32 I/O adapters of an
      integer model), and ``inputs`` / ``outputs`` (lists of dicts with ``name``, ``shape``,
      ``dtype`` as a lowercase string such as ``"int8"``, and ``step``: the quantization scale
      of the tensor, or of the int8 tensor a DEQUANTIZE turned into it; 0.0 for float values;
      ``scale`` and ``zero_point``: the tensor's own quantization, 0.0 and 0 if it has none), and
      ``signatures`` (signature key -> ``{"inputs": [names], "outputs": [names]}``).
    """
    schema = _schema()
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    model = schema.Model.GetRootAsModel(content, 0)
    graph = model.Subgraphs(0)

    def tensor_type(index):
        return type_names[graph.Tensors(index).Type()]

    def scale(index):
        quantization = graph.Tensors(index).Quantization()
        if quantization is None or quantization.ScaleLength() == 0:
            return 0.0
        return float(quantization.Scale(0))

    def zero_point(index):
        quantization = graph.Tensors(index).Quantization()
        if quantization is None or quantization.ZeroPointLength() == 0:
            return 0
        return int(quantization.ZeroPoint(0))

    signatures = {}
    for i in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(i)
        signatures[signature.SignatureKey().decode()] = {
            "inputs": [signature.Inputs(j).Name().decode() for j in range(signature.InputsLength())],
            "outputs": [signature.Outputs(j).Name().decode()
                        for j in range(signature.OutputsLength())]}
    graph_inputs = set(graph.InputsAsNumpy().tolist())
    graph_outputs = set(graph.OutputsAsNumpy().tolist())
    ops, float_ops, dequantized_from = [], [], {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Codes above 127 only fit the newer field; the deprecated one keeps the older ones.
        name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        if name == "CUSTOM" and code.CustomCode():
            name = f"CUSTOM:{code.CustomCode().decode()}"
        ops.append(name)
        inputs = [t for t in op.InputsAsNumpy().tolist() if t >= 0]  # -1: optional input unset.
        outputs = op.OutputsAsNumpy().tolist()
        if name == "DEQUANTIZE":
            dequantized_from[outputs[0]] = inputs[0]
        if not any(tensor_type(t).startswith("FLOAT") for t in inputs + outputs):
            continue
        at_edge = ((name == "QUANTIZE" and set(inputs) <= graph_inputs)
                   or (name == "DEQUANTIZE" and set(outputs) <= graph_outputs))
        if not at_edge:
            float_ops.append(name)

    def tensor_info(index):
        tensor = graph.Tensors(index)
        # A float output written by DEQUANTIZE carries the int8 tensor's rounding step.
        step = scale(index) or scale(dequantized_from.get(index, index))
        return {"name": tensor.Name().decode(), "shape": tensor.ShapeAsNumpy().tolist(),
                "dtype": tensor_type(index).lower(), "step": step, "scale": scale(index),
                "zero_point": zero_point(index)}

    return {"ops": ops, "float_ops": float_ops, "signatures": signatures,
            "inputs": [tensor_info(t) for t in graph.InputsAsNumpy().tolist()],
            "outputs": [tensor_info(t) for t in graph.OutputsAsNumpy().tolist()]}


def make_interpreter(content, num_threads=None, input_shape=None):
    """Builds and allocates a LiteRT interpreter, with XNNPACK if the file allows it.

    Args:
      content: model bytes.
      num_threads: CPU threads (None: LiteRT's default).
      input_shape: optional new shape of the (single) input tensor, e.g. ``[64, latent_dim]``.

    Returns:
      ``(interpreter, delegate)`` where ``delegate`` is ``"XNNPACK"`` or
      ``"none (XNNPACK failed: <reason>)"``.

    Raises:
      RuntimeError: the file cannot be prepared even without XNNPACK (e.g. ``input_shape``
        conflicts with a fixed batch baked into the graph).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def build(**kwargs):
        interpreter = Interpreter(model_content=content, num_threads=num_threads, **kwargs)
        if input_shape is not None:
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, list(input_shape), strict=False)
        interpreter.allocate_tensors()
        return interpreter

    try:
        return build(), XNNPACK
    except (RuntimeError, ValueError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
    builtin = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = build(experimental_op_resolver_type=builtin)
    return interpreter, f"none ({XNNPACK} failed: {reason})"


def quantize(values, details):
    """Maps float values to a tensor's integer type with its scale and zero point (if quantized).

    Args:
      values: float array.
      details: an entry of ``interpreter.get_input_details()``.

    Returns:
      An array of ``details["dtype"]``, saturated at the type's limits.
    """
    dtype = np.dtype(details["dtype"])
    scale, zero_point = details["quantization"]
    if not np.issubdtype(dtype, np.integer) or scale == 0:
        return np.asarray(values, dtype=dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(values, details):
    """Maps a tensor's integer values back to float32 (float tensors pass through)."""
    scale, zero_point = details["quantization"]
    if not np.issubdtype(np.dtype(details["dtype"]), np.integer) or scale == 0:
        return np.asarray(values, dtype=np.float32)
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def run_signature(content, z, signature_key, input_name, output_name, num_threads=None,
                  label_name="label"):
    """Runs a generator file through one of its signatures, as an app calls it on a phone.

    Inputs are quantized and outputs dequantized with the signature tensors' own scale and zero
    point; samples go through at the file's own batch (the last chunk padded).

    Args:
      content: model bytes.
      z: float32 [N, latent_dim], or ``(z, labels int32 [N])`` for a conditional file.
      signature_key: e.g. ``"serving_default"``.
      input_name: the signature's latent input, e.g. ``"z"``.
      output_name: the signature's image output, e.g. ``"image"``.
      num_threads: CPU threads (None: LiteRT's default).
      label_name: a conditional file's class input.

    Returns:
      ``(images, delegate)``: float32 [N, H, W, C] and the delegate (see `make_interpreter`).

    Raises:
      ValueError: the file has no such signature, input or output.
    """
    interpreter, delegate = make_interpreter(content, num_threads)
    runner = interpreter.get_signature_runner(signature_key)
    z, labels = z if isinstance(z, tuple) else (z, None)
    z_details = runner.get_input_details()[input_name]
    image_details = runner.get_output_details()[output_name]
    z = np.asarray(z, np.float32)
    batch = int(z_details["shape"][0])
    images = []
    for start in range(0, len(z), batch):
        chunk = z[start:start + batch]
        padded = np.zeros((batch,) + z.shape[1:], np.float32)
        padded[:len(chunk)] = chunk
        feed = {input_name: quantize(padded, z_details)}
        if labels is not None:
            feed[label_name] = _padded_labels(labels[start:start + batch], batch)
        output = runner(**feed)[output_name]
        images.append(dequantize(output, image_details)[:len(chunk)])
    return np.concatenate(images), delegate


def _padded_labels(labels, batch):
    padded = np.zeros((batch,), np.int32)
    padded[:len(labels)] = labels
    return padded


def is_label_input(details):
    """A conditional generator's class input: integer and not quantized (int32 in every format)."""
    return details["dtype"] == np.int32 and details["quantization"][0] == 0


class TFLiteGenerator:
    """A ``.tflite`` generator as a numpy function: z [N, latent_dim] -> images [N, H, W, C].

    Integer inputs are quantized and integer outputs dequantized with the tensors' own scale and
    zero point, so every file is called the same way. Exported files have a fixed batch of 1
    (that removes shape ops); when the file also runs at a larger batch (a dynamic-batch file) the
    interpreter is resized to ``batch_size`` after a check that batched outputs equal per-sample
    ones, otherwise samples go through one at a time.

    A conditional file (a second, int32 ``label`` input) is called with ``(z, labels)`` and runs
    one sample per ``invoke``.

    Attributes:
      latent_dim: int.
      conditional: whether the file takes a ``label`` input.
      image_shape: (H, W, C).
      batch_size: samples per ``invoke`` actually used (1 when the file only runs at batch 1).
      delegate: ``"XNNPACK"`` or ``"none (XNNPACK failed: <reason>)"``.

    Raises:
      ModelFileError: ``content`` does not parse as a TFLite model.
    """

    def __init__(self, content, num_threads=None, batch_size=64, name="<bytes>"):
        self.name = name
        self._content = content
        self._num_threads = num_threads
        try:
            self._set(*make_interpreter(content, num_threads))
        except ValueError as error:  # the interpreter could not parse the flatbuffer
            raise ModelFileError(f"{name} is not a valid TFLite model: "
                                 f"{' '.join(str(error).split())}") from error
        self.latent_dim = int(self._input["shape"][-1])
        self.image_shape = tuple(int(d) for d in self._output["shape"][1:])
        self.batch_size = int(self._input["shape"][0])
        self.conditional = self._label is not None
        if batch_size > self.batch_size and not self.conditional:
            self._try_batch(batch_size)

    def _set(self, interpreter, delegate):
        self._interpreter = interpreter
        self.delegate = delegate
        inputs = interpreter.get_input_details()
        self._label = next((d for d in inputs if is_label_input(d)), None) if len(inputs) > 1 else None
        self._input = next(d for d in inputs if d is not self._label)
        self._output = interpreter.get_output_details()[0]

    def _invoke(self, z, labels=None):
        self._interpreter.set_tensor(self._input["index"], quantize(z, self._input))
        if self._label is not None:
            self._interpreter.set_tensor(self._label["index"], labels)
        self._interpreter.invoke()
        return dequantize(self._interpreter.get_tensor(self._output["index"]), self._output)

    def _try_batch(self, batch_size):
        probe = sample_latents(batch_size, self.latent_dim, seed=0)
        single = self(probe)  # at the file's own batch
        unbatched = (self._interpreter, self.delegate)
        try:
            self._set(*make_interpreter(self._content, self._num_threads,
                                        [batch_size, self.latent_dim]))
            batched = self._invoke(probe)
        except (RuntimeError, ValueError):
            self._set(*unbatched)
            return
        # A graph with its batch baked in can "run" resized yet compute the wrong thing, and the
        # builtin kernels standing in for a refused XNNPACK are not what the file runs with.
        step = max(self._output["quantization"][0], 1e-4)
        if (self.delegate == unbatched[1] and batched.shape == single.shape
                and np.allclose(batched, single, rtol=0, atol=step)):
            self.batch_size = batch_size
        else:
            self._set(*unbatched)

    def __call__(self, z):
        """Generates images.

        Args:
          z: float32 [N, latent_dim]; ``(z, labels int32 [N])`` for a conditional file.

        Returns:
          float32 [N, H, W, C], in [-1, 1] up to the output's quantization step.
        """
        z, labels = z if isinstance(z, tuple) else (z, None)
        if self.conditional and labels is None:
            raise ValueError(f"{self.name} is conditional: call it with (z, labels)")
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape [N, {self.latent_dim}], got {list(z.shape)}")
        images = np.empty((len(z),) + self.image_shape, np.float32)
        for start in range(0, len(z), self.batch_size):
            chunk = z[start:start + self.batch_size]
            padded = np.zeros((self.batch_size, self.latent_dim), np.float32)
            padded[:len(chunk)] = chunk  # the last chunk runs padded: the tensor's shape is fixed.
            label_chunk = (None if labels is None else
                           _padded_labels(labels[start:start + self.batch_size], self.batch_size))
            images[start:start + len(chunk)] = self._invoke(padded, label_chunk)[:len(chunk)]
        return images


def load_tflite_generator(path, num_threads=None, batch_size=64):
    """Loads an exported ``.tflite`` generator as a callable (see `TFLiteGenerator`).

    Args:
      path: ``.tflite`` file.
      num_threads: CPU threads of the interpreter (None: LiteRT's default).
      batch_size: samples per ``invoke`` to try when the file allows a larger batch.

    Returns:
      A `TFLiteGenerator`: z float32 [N, latent_dim] -> images float32 [N, H, W, C].

    Raises:
      ModelFileError: the file is missing or is not a TFLite model.
    """
    return TFLiteGenerator(read_tflite(path), num_threads=num_threads, batch_size=batch_size,
                           name=str(path))
