"""Reads Caffe .caffemodel weights without Caffe: {layer name: [blobs]}.

A .caffemodel is a binary `caffe.NetParameter` protobuf. We parse it with the
protobuf library and message classes built at runtime from a descriptor that
declares only the fields we read; protobuf skips every other field (layer
params, bottoms/tops, diffs...) as unknown, so the rest of caffe.proto is not
needed. Field numbers, types and packed-ness are those of BVLC/caffe's
src/caffe/proto/caffe.proto (master, commit 9b891540183d, Feb 2020):

  message BlobShape { repeated int64 dim = 1 [packed = true]; }
  message BlobProto {
    optional BlobShape shape = 7;
    repeated float data = 5 [packed = true];
    repeated double double_data = 8 [packed = true];
    optional int32 num = 1; optional int32 channels = 2;    // legacy 4-D
    optional int32 height = 3; optional int32 width = 4;    // dims
  }
  message NetParameter {
    optional string name = 1;
    repeated LayerParameter layer = 100;   // current
    repeated V1LayerParameter layers = 2;  // DEPRECATED (2014 model zoo)
  }
  message LayerParameter { optional string name = 1; optional string type = 2;
                           repeated BlobProto blobs = 7; }
  message V1LayerParameter { optional string name = 4;
                             optional LayerType type = 5;  // an enum
                             repeated BlobProto blobs = 6;
                             optional V0LayerParameter layer = 1; }
  message V0LayerParameter { optional string name = 1; optional string type = 2;
                             repeated BlobProto blobs = 50; }

V1's `type` enum is declared as int32 (the same varint on the wire); V0 layers
(nested in a V1 layer, Caffe's oldest format) give their name and blobs when
the V1 layer has none. Parsers accept packed and unpacked repeated scalars
alike, so files written either way read the same.

Blob shapes are kept as stored: `shape.dim` when present, else the legacy
(num, channels, height, width), e.g. (1, 1, 4096, 9216) for bvlc_alexnet's
fc6 weights and (1, 1, 1, 4096) for its bias (fer_jax.models.importers
squeezes them).
"""
import functools
import os
from typing import Dict, List

import numpy as np
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message as message_lib
from google.protobuf import message_factory

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_PACKAGE = 'caffe'

# message -> [(field, number, label, type, message type or None, packed)],
# from caffe.proto (see the module docstring).
_SCHEMA = {
    'BlobShape': [('dim', 1, _REP, _F.TYPE_INT64, None, True)],
    'BlobProto': [
        ('shape', 7, _OPT, _F.TYPE_MESSAGE, 'BlobShape', False),
        ('data', 5, _REP, _F.TYPE_FLOAT, None, True),
        ('double_data', 8, _REP, _F.TYPE_DOUBLE, None, True),
        ('num', 1, _OPT, _F.TYPE_INT32, None, False),
        ('channels', 2, _OPT, _F.TYPE_INT32, None, False),
        ('height', 3, _OPT, _F.TYPE_INT32, None, False),
        ('width', 4, _OPT, _F.TYPE_INT32, None, False),
    ],
    'LayerParameter': [
        ('name', 1, _OPT, _F.TYPE_STRING, None, False),
        ('type', 2, _OPT, _F.TYPE_STRING, None, False),
        ('blobs', 7, _REP, _F.TYPE_MESSAGE, 'BlobProto', False),
    ],
    'V0LayerParameter': [
        ('name', 1, _OPT, _F.TYPE_STRING, None, False),
        ('type', 2, _OPT, _F.TYPE_STRING, None, False),
        ('blobs', 50, _REP, _F.TYPE_MESSAGE, 'BlobProto', False),
    ],
    'V1LayerParameter': [
        ('name', 4, _OPT, _F.TYPE_STRING, None, False),
        ('type', 5, _OPT, _F.TYPE_INT32, None, False),
        ('blobs', 6, _REP, _F.TYPE_MESSAGE, 'BlobProto', False),
        ('layer', 1, _OPT, _F.TYPE_MESSAGE, 'V0LayerParameter', False),
    ],
    'NetParameter': [
        ('name', 1, _OPT, _F.TYPE_STRING, None, False),
        ('layer', 100, _REP, _F.TYPE_MESSAGE, 'LayerParameter', False),
        ('layers', 2, _REP, _F.TYPE_MESSAGE, 'V1LayerParameter', False),
    ],
}


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
  fd = descriptor_pb2.FileDescriptorProto(
      name='fer_jax_caffe_subset.proto', package=_PACKAGE, syntax='proto2')
  for msg_name, fields in _SCHEMA.items():
    msg = fd.message_type.add(name=msg_name)
    for name, number, label, ftype, type_name, packed in fields:
      f = msg.field.add(name=name, number=number, label=label, type=ftype)
      if type_name:
        f.type_name = f'.{_PACKAGE}.{type_name}'
      if packed:
        f.options.packed = True
  return fd


@functools.lru_cache(maxsize=None)
def net_parameter_class():
  """The NetParameter class, in a private pool (no clash with caffe_pb2)."""
  pool = descriptor_pool.DescriptorPool()
  pool.Add(_file_descriptor())
  return message_factory.GetMessageClass(
      pool.FindMessageTypeByName(f'{_PACKAGE}.NetParameter'))


def _blob_array(blob, where: str) -> np.ndarray:
  if blob.HasField('shape'):
    shape = tuple(int(d) for d in blob.shape.dim)
  else:  # legacy 4-D blob
    shape = (blob.num, blob.channels, blob.height, blob.width)
  if len(blob.data) or not len(blob.double_data):
    values = np.array(blob.data, np.float32)  # copies out of the message
  else:
    values = np.array(blob.double_data, np.float64)
  if values.size != int(np.prod(shape)):
    raise ValueError(f'{where}: blob shape {shape} needs {int(np.prod(shape))} '
                     f'values, the file holds {values.size}.')
  return values.reshape(shape)


def parse_net(data: bytes, where: str = 'Caffe weights'
              ) -> Dict[str, List[np.ndarray]]:
  """{layer name: [blobs]} of a serialized NetParameter, for layers with blobs.

  `where` names the source in errors. Layers come in file order; a weighted
  layer name that occurs twice is an error (which one Caffe uses is unclear).
  """
  net = net_parameter_class()()
  try:
    net.ParseFromString(data)
  except message_lib.DecodeError as e:
    raise ValueError(f'{where} is not a binary Caffe NetParameter '
                     f'(.caffemodel): {e}') from None
  layers = [(l.name, l.blobs) for l in net.layer]
  for l in net.layers:  # V1 (and V0 inside it)
    blobs = l.blobs if len(l.blobs) else l.layer.blobs
    layers.append((l.name or l.layer.name, blobs))
  out = {}
  for name, blobs in layers:
    if not len(blobs):
      continue  # ReLU, pooling, data, loss...
    if name in out:
      raise ValueError(f'{where}: two layers named {name!r} hold weights.')
    out[name] = [_blob_array(b, f'{where}: layer {name!r} blob {i}')
                 for i, b in enumerate(blobs)]
  if not out:
    raise ValueError(f'{where} holds no layer with weights (a .prototxt or a '
                     'deploy net without weights?).')
  return out


def read_caffemodel(path: str) -> Dict[str, List[np.ndarray]]:
  """{layer name: [blobs as stored]} of a .caffemodel (weight, bias, ...)."""
  path = os.fspath(path)
  with open(path, 'rb') as f:
    return parse_net(f.read(), path)
