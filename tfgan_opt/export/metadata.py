"""Metadata embedded in a ``.tflite`` file: named entries of the model FlatBuffer's metadata list.

A TFLite model carries a list of ``(name, buffer index)`` metadata entries; the converter writes
``min_runtime_version`` and ``CONVERSION_METADATA`` there, and TFLite Support's metadata lives
under ``TFLITE_METADATA``. This module adds one more, `MODEL_CARD_NAME`: a UTF-8 JSON model card.

It is written with TensorFlow's own copy of the FlatBuffer schema
(``tensorflow.lite.python.schema_py_generated``, object API) and the ``flatbuffers`` package that
TensorFlow depends on. ``tflite-support``, whose writers would do this, pins protobuf 3.20 and
cannot share an environment with TensorFlow 2.21. Buffers are re-packed 16-byte aligned, as the
schema's ``force_align: 16`` asks (the Python object API ignores it), so a memory-mapped file has
aligned weights. The graph is untouched: a file with metadata runs
bit-identically to the file without it (tested).
"""

import json
import struct

import flatbuffers
import numpy as np

from tfgan_opt.core.errors import ModelFileError

MODEL_CARD_NAME = "tfgan_opt.model_card"
_TFLITE_IDENTIFIER = b"TFL3"
_BUFFER_ALIGNMENT = 16


def _schema():
    from tensorflow.lite.python import schema_py_generated  # TensorFlow's copy; loads TF lazily
    return schema_py_generated


def read_metadata(content):
    """The metadata entries of a TFLite model.

    Args:
      content: the model's bytes.

    Returns:
      dict name (str) -> bytes, in the file's order.
    """
    model = _schema().Model.GetRootAsModel(content, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        data = model.Buffers(entry.Buffer()).DataAsNumpy()
        entries[entry.Name().decode()] = b"" if isinstance(data, int) else data.tobytes()
    return entries


class _AlignedBuffer:
    """Packs a ``BufferT`` whose data starts on a 16-byte boundary (see the module docstring)."""

    def __init__(self, buffer):
        self._buffer = buffer

    def Pack(self, builder):  # pylint: disable=invalid-name (the object API's method name)
        schema, data = _schema(), self._buffer.data
        offset = None
        if data is not None:
            data = np.asarray(data, dtype=np.uint8)
            builder.StartVector(1, len(data), _BUFFER_ALIGNMENT)
            builder.head -= len(data)
            builder.Bytes[builder.head:builder.head + len(data)] = data.tobytes()
            offset = builder.EndVector()
        schema.BufferStart(builder)
        if offset is not None:
            schema.BufferAddData(builder, offset)
        schema.BufferAddOffset(builder, self._buffer.offset)
        schema.BufferAddSize(builder, self._buffer.size)
        return schema.BufferEnd(builder)


def with_metadata(content, name, data):
    """A copy of a TFLite model with metadata entry ``name`` set to ``data`` (replaced if present).

    Args:
      content: the model's bytes.
      name: entry name, e.g. `MODEL_CARD_NAME`.
      data: the entry's bytes.

    Returns:
      The new model's bytes (same graph, weights and signatures).
    """
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, dtype=np.uint8)
    model.metadata = list(model.metadata or [])
    model.buffers = list(model.buffers or [])
    existing = [entry for entry in model.metadata if entry.name.decode() == name]
    if existing:
        model.buffers[existing[0].buffer] = buffer
    else:
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers)
        model.buffers.append(buffer)
        model.metadata.append(entry)
    model.buffers = [_AlignedBuffer(b) for b in model.buffers]
    builder = flatbuffers.Builder(len(content) + len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def embed_model_card(content, card):
    """A copy of the model with ``card`` (a JSON-serializable dict) as its model card entry."""
    return with_metadata(content, MODEL_CARD_NAME,
                         json.dumps(card, indent=1, sort_keys=True).encode("utf-8"))


def read_model_card(content, name="<bytes>"):
    """The model card embedded in a TFLite model, or None if it has none.

    Raises:
      ModelFileError: the entry exists but is not a JSON object.
    """
    try:
        data = read_metadata(content).get(MODEL_CARD_NAME)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as error:
        # A truncated or damaged FlatBuffer: offsets point outside the file.
        raise ModelFileError(f"{name} is not a readable TFLite model ({type(error).__name__}: "
                             f"its metadata points outside the file)") from error
    if data is None:
        return None
    try:
        card = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelFileError(f"{name}: the {MODEL_CARD_NAME} metadata is not valid JSON "
                             f"({type(error).__name__})") from error
    if not isinstance(card, dict):
        raise ModelFileError(f"{name}: the {MODEL_CARD_NAME} metadata is not a JSON object")
    return card


def buffer_alignments(content):
    """Start offset modulo 16 of each non-empty buffer's data (for tests of the alignment)."""
    model = _schema().Model.GetRootAsModel(content, 0)
    offsets = []
    for i in range(model.BuffersLength()):
        buffer = model.Buffers(i)
        if buffer.DataLength():
            offsets.append(buffer._tab.Vector(buffer._tab.Offset(4)) % _BUFFER_ALIGNMENT)  # pylint: disable=protected-access
    return offsets
