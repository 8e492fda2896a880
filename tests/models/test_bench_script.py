"""launch/bench_backbones.py runs end to end (CPU, tiny settings, no torch)."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def test_bench_backbones_smoke(capsys):
  spec = importlib.util.spec_from_file_location(
      'bench_backbones', os.path.join(ROOT, 'launch', 'bench_backbones.py'))
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  assert set(bench.PAPER_SIZES) >= {'alexnet', 'inception_v3', 'mini_xception'}
  assert bench.main(['--models', 'mini_xception', '--batch_size', '2',
                     '--steps', '1', '--warmup', '1', '--no_torch',
                     '--peak_tflops', '1']) == 0
  out = capsys.readouterr().out
  assert 'mini_xception' in out and '%' in out
