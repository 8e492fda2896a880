"""The README's layers, read from the code: no import cycle between modules of
fer_jax/, and no import from a lower layer to a higher one, lazy imports inside
functions included.

The graph comes from the source text (ast), not from importing: an import
that runs only on some path counts as much as one at the top of a module.
"""
import ast
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    'fer_jax')

# Lowest first, as the README's Layout section lists them: a module may import
# its own layer and the layers before it.
LAYERS = ('atomic', 'registry', 'data', 'face', 'models', 'evaluate', 'tasks',
          'train', 'protocols', 'predict', 'labeling', 'participant',
          'cli')


def module_files(root=ROOT):
  """{dotted module name: path} of every .py file under `root`."""
  out, base = {}, os.path.dirname(root)
  for d, _, files in os.walk(root):
    for f in files:
      if f.endswith('.py'):
        path = os.path.join(d, f)
        parts = os.path.relpath(path, base)[:-3].split(os.sep)
        if parts[-1] == '__init__':
          parts = parts[:-1]
        out['.'.join(parts)] = path
  return out


def _imported(node, module, is_package):
  """Dotted names an Import / ImportFrom node names, relative ones resolved;
  for `from X import Y` both X.Y (kept when it is a module) and X."""
  if isinstance(node, ast.Import):
    return [(a.name, None) for a in node.names]
  base = node.module or ''
  if node.level:
    pkg = module.split('.') if is_package else module.split('.')[:-1]
    pkg = pkg[:len(pkg) - node.level + 1]
    base = '.'.join(pkg + ([base] if base else []))
  return [(base, a.name) for a in node.names]


def import_graph(files):
  """{module: {imported fer_jax module: first line}}, every import statement
  anywhere in the module (top level, functions, conditionals)."""
  graph = {}
  for module, path in files.items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    edges = graph.setdefault(module, {})
    is_package = path.endswith('__init__.py')
    for node in ast.walk(tree):
      if not isinstance(node, (ast.Import, ast.ImportFrom)):
        continue
      for base, name in _imported(node, module, is_package):
        target = f'{base}.{name}' if name and f'{base}.{name}' in files else base
        if target in files and target != module:
          edges.setdefault(target, node.lineno)
  return graph


def layer(module):
  """The README layer of a module: fer_jax.<layer>[.<...>]."""
  parts = module.split('.')
  return parts[1] if len(parts) > 1 else None


def upward_imports(graph, layers=LAYERS):
  """['a (layer) imports b (layer) at line n'] for each edge to a higher layer."""
  rank = {name: i for i, name in enumerate(layers)}
  out = []
  for a, edges in sorted(graph.items()):
    for b, line in sorted(edges.items()):
      la, lb = layer(a), layer(b)
      if la in rank and lb in rank and rank[lb] > rank[la]:
        out.append(f'{a} ({la}) imports {b} ({lb}) at line {line}')
  return out


def cycles(graph):
  """Strongly connected components with more than one module (Tarjan), each
  as a sorted list."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v):
    # Iterative: a deep chain of imports must not hit the recursion limit.
    work = [(v, iter(sorted(graph.get(v, ()))))]
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    while work:
      node, children = work[-1]
      for w in children:
        if w not in index:
          index[w] = low[w] = len(index)
          stack.append(w)
          on_stack.add(w)
          work.append((w, iter(sorted(graph.get(w, ())))))
          break
        if w in on_stack:
          low[node] = min(low[node], index[w])
      else:
        work.pop()
        if work:
          low[work[-1][0]] = min(low[work[-1][0]], low[node])
        if low[node] == index[node]:
          comp = []
          while True:
            w = stack.pop()
            on_stack.discard(w)
            comp.append(w)
            if w == node:
              break
          if len(comp) > 1:
            out.append(sorted(comp))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return out


def _write(tmp_path, files):
  for name, text in files.items():
    path = tmp_path / 'fer_jax' / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
  return module_files(str(tmp_path / 'fer_jax'))


def test_a_lazy_upward_import_and_a_cycle_are_found(tmp_path):
  # The checker itself, on a made-up package with one of each fault.
  files = _write(tmp_path, {
      '__init__.py': '',
      'data/__init__.py': '',
      'data/a.py': 'from fer_jax.data import b\n',
      'data/b.py': 'def f():\n  from . import a\n',   # lazy + relative
      'data/c.py': 'def f():\n  from fer_jax.train import loop\n',
      'train/__init__.py': '',
      'train/loop.py': 'import fer_jax.data.a\nfrom fer_jax.data.b import X\n',
  })
  graph = import_graph(files)
  assert graph['fer_jax.train.loop'] == {'fer_jax.data.a': 1, 'fer_jax.data.b': 2}
  assert cycles(graph) == [['fer_jax.data.a', 'fer_jax.data.b']]
  assert upward_imports(graph) == [
      'fer_jax.data.c (data) imports fer_jax.train.loop (train) at line 2']


def test_every_package_of_fer_jax_is_a_listed_layer():
  found = {layer(m) for m in module_files()} - {None}
  assert found <= set(LAYERS), f'not in the README layers: {found - set(LAYERS)}'


def test_no_import_cycle_between_modules():
  found = cycles(import_graph(module_files()))
  assert not found, 'import cycles:\n' + '\n'.join(' <-> '.join(c) for c in found)


def test_no_import_from_a_lower_layer_to_a_higher_one():
  found = upward_imports(import_graph(module_files()))
  assert not found, 'upward imports (' + ' -> '.join(LAYERS) + '):\n' + '\n'.join(found)


def test_the_library_imports_no_config_or_launcher():
  bad = []
  for module, path in module_files().items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
      if isinstance(node, (ast.Import, ast.ImportFrom)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [
            node.module or '']
        bad += [f'{module}:{node.lineno} imports {n}' for n in names
                if n.split('.')[0] in ('configs', 'launch', 'tests')]
  assert not bad, '\n'.join(bad)


def test_importing_the_tasks_loads_neither_grain_nor_cv2():
  # Losses and metrics do not need the input pipeline's libraries.
  code = ('import sys, fer_jax.tasks; '
          'print(sorted({"grain", "cv2"} & set(sys.modules)))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, check=True, cwd=os.path.dirname(ROOT))
  assert out.stdout.strip() == '[]', out.stdout + out.stderr
