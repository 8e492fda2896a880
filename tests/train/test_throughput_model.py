"""launch/throughput_model.py against hand-computed step times."""
import pytest

from launch import throughput_model as tm


def test_one_gpu_is_the_measured_figure_and_no_communication():
  assert tm.allreduce_seconds(10**8, 1, tm.Links()) == 0.0
  assert tm.expected_images_per_second(1000.0, 100, 10**8, 1) == 1000.0


def test_step_time_by_hand():
  links = tm.Links(intra_node=100e9, inter_node=10e9, gpus_per_node=8)
  # 8 GPUs, 25e6 params: 2 * 7/8 * 4 * 25e6 B / 100 GB/s = 1.75 ms of
  # all-reduce; compute 256 / 2560 = 100 ms hides it entirely.
  assert tm.allreduce_seconds(25 * 10**6, 8, links) == pytest.approx(1.75e-3)
  assert tm.expected_images_per_second(2560, 256, 25 * 10**6, 8, links,
                                       overlap=0.5) == pytest.approx(8 * 2560)
  # 16 GPUs cross nodes: 2 * 15/16 * 4e8 B / 10 GB/s = 75 ms; with compute
  # 10 ms and half of it overlapped the step takes 10 + (75 - 5) = 80 ms.
  t = 0.010 + (0.075 - 0.005)
  got = tm.expected_images_per_second(25600, 256, 10**8, 16, links, overlap=0.5)
  assert got == pytest.approx(16 * 256 / t)


def test_table_lists_every_model_and_device_count():
  out = tm.table(tm.REFERENCE_H100, (1, 8, 64), tm.Links(), 0.5)
  assert len(out.splitlines()) == 2 + len(tm.REFERENCE_H100)
  assert '64 GPU img/s' in out and '31,985 (100%)' in out
