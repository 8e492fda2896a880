"""Writes Keras' MobileNetV2(include_top=False) layer list as a JSON fixture.

Paper 004 unfreezes "the last 56 layers" of this Keras model, so
`trainable='keras_last:56'` must pick the weights of exactly those layers;
tests/models/test_keras_last_layers.py checks it against this list. TensorFlow
is not a dependency of fer_jax: run this in a separate environment, e.g.

  python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
  /tmp/tfvenv/bin/python launch/make_keras_layer_fixture.py \
      --out=tests/fixtures/keras_mobilenet_v2_layers.json

weights=None: only the layer list is read, nothing is downloaded.
"""
import argparse
import json


def layer_list(model):
  """[{name, class, weights: [[weight name, shape], ...]}] in model.layers order."""
  out = []
  for layer in model.layers:
    weights = []
    for w in layer.weights:
      # Keras 3 names a variable by its own name ('kernel'); Keras 2 by
      # 'layer/kernel:0'.
      name = w.name.split('/')[-1].split(':')[0]
      weights.append([name, [int(d) for d in w.shape]])
    out.append({'name': layer.name, 'class': type(layer).__name__,
                'weights': weights})
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True)
  parser.add_argument('--size', type=int, default=224)
  args = parser.parse_args()
  import keras  # pylint: disable=g-import-not-at-top
  model = keras.applications.MobileNetV2(
      input_shape=(args.size, args.size, 3), include_top=False, weights=None)
  doc = {'model': 'keras.applications.MobileNetV2(include_top=False, '
                  f'weights=None, input_shape=({args.size}, {args.size}, 3))',
         'keras_version': keras.__version__,
         'layers': layer_list(model)}
  with open(args.out, 'w') as f:  # one layer a line: small, diffable
    head = json.dumps({k: v for k, v in doc.items() if k != 'layers'})[:-1]
    f.write(head + ', "layers": [\n')
    f.write(',\n'.join(json.dumps(l) for l in doc['layers']) + ']}\n')
  print(f'{args.out}: {len(doc["layers"])} layers (Keras {keras.__version__})')


if __name__ == '__main__':
  main()
