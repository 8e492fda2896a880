"""Import torchvision's model definitions for reference checks (optional).

The PyPI torchvision wheels are CUDA builds: on a CPU-only torch their C
extension fails to load and `import torchvision` raises in its op
registrations. The model definitions themselves are pure Python, so on that
failure we load the `torchvision` package without running its __init__.
"""
import importlib
import importlib.util
import sys
import types


def torchvision_models():
  """torchvision.models, or None when torch or torchvision is absent."""
  try:
    import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return None
  spec = importlib.util.find_spec('torchvision')
  if spec is None:
    return None
  try:
    return importlib.import_module('torchvision.models')
  except (RuntimeError, ImportError, OSError):
    for name in [n for n in sys.modules if n.split('.')[0] == 'torchvision']:
      del sys.modules[name]
    pkg = types.ModuleType('torchvision')
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    pkg.__file__ = spec.origin
    sys.modules['torchvision'] = pkg
    return importlib.import_module('torchvision.models')
