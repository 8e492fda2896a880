"""What every launcher shares: a user's mistake is one line, not a traceback.

    if __name__ == '__main__':
      cli.run(main)                          # instead of absl's app.run(main)
      cli.run(main, config_flag='config')    # + --config.KEY=VALUE overrides

An expected error (`is_expected`: a bad flag, an unknown config key or name, a
workdir of another config or not a trained run, a missing file, a bad dataset
record) prints `error: <message>` on stderr, one line, and exits with status 2.
Any other exception is a bug and keeps its traceback.

With `config_flag`, every `--config.KEY=VALUE` (also `--config.KEY VALUE`,
`--noconfig.KEY`) is taken off the command line before absl parses it, so the
config file loads as it is; `config_overrides()` returns them, and the launcher
applies them with `fer_jax.train.stages.apply_overrides`, which reaches every
stage of a staged config (or one: `--config.stages.<i|name>.KEY=VALUE`) and
refuses a key that reaches nothing.
"""
import sys
from typing import Dict, List

from absl import app, flags

_OVERRIDES: Dict[str, str] = {}


class UsageError(ValueError):
  """A launcher's flags ask for something that cannot be done."""


def is_expected(e: BaseException) -> bool:
  """Whether `e` is a user's mistake (one line) rather than a bug."""
  if isinstance(e, (UsageError, flags.Error, FileNotFoundError,
                    NotADirectoryError, IsADirectoryError)):
    return True
  from fer_jax.train import workdir  # light: no jax import at module level
  if isinstance(e, (workdir.ConfigError, workdir.ConfigMismatchError)):
    return True
  from fer_jax.data.pipeline import BadRecordError  # AdapterError's base
  from fer_jax.data.prepare import SourceArgumentError
  from fer_jax.models.partition import WeightMismatchError
  # A diverged run, a damaged checkpoint.
  from fer_jax.train.checkpoint import DamagedCheckpointError, NonFiniteError
  return isinstance(e, (BadRecordError, SourceArgumentError, WeightMismatchError,
                        DamagedCheckpointError, NonFiniteError))


def message(e: BaseException) -> str:
  """One line: the error's message (a KeyError's without its quotes); a
  multi-line one (a dataset's expected layout) joined, an embedded traceback
  (a config file that fails to load) cut to its last line."""
  text = e.args[0] if len(e.args) == 1 and isinstance(e.args[0], str) else str(e)
  if 'Traceback (most recent call last)' in text:  # e.g. a config file's error
    head, _, tb = text.partition('Traceback (most recent call last)')
    text = head.rstrip(' :\n') + ': ' + [l for l in tb.splitlines() if l.strip()][-1]
  lines = [l for l in str(text).splitlines() if l.strip()] or [type(e).__name__]
  return lines[0] if len(lines) == 1 else lines[0] + ' ' + ' '.join(
      l.strip() for l in lines[1:])


def json_flag(name: str, text: str):
  """The value of a JSON flag; UsageError naming the flag if it is not JSON."""
  import json
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise UsageError(f'--{name}={text!r} is not JSON ({e})') from None


def fail(text: str, status: int = 2):
  print(f'error: {text}', file=sys.stderr, flush=True)
  sys.exit(status)


def config_overrides() -> Dict[str, str]:
  """The --config.KEY=VALUE overrides taken off the command line, in order."""
  return dict(_OVERRIDES)


def split_config_overrides(argv: List[str], name: str = 'config'):
  """(argv without --NAME.KEY[=VALUE] / --noNAME.KEY, {KEY: VALUE text})."""
  rest, found = [], {}
  i = 0
  prefixes = (f'--{name}.', f'-{name}.')
  negated = (f'--no{name}.', f'-no{name}.')
  while i < len(argv):
    arg = argv[i]
    if arg == '--':
      rest += argv[i:]
      break
    if i and arg.startswith(negated):
      found[arg.split('.', 1)[1]] = 'False'
    elif i and arg.startswith(prefixes):
      key, eq, value = arg.split('.', 1)[1].partition('=')
      if not eq:  # --config.KEY VALUE, or a bare --config.KEY (True)
        if i + 1 < len(argv) and not argv[i + 1].startswith('-'):
          i += 1
          value = argv[i]
        else:
          value = 'True'
      if not key:
        raise UsageError(f'{arg}: no config key after --{name}.')
      found.pop(key, None)  # the last one wins, in its place
      found[key] = value
    else:
      rest.append(arg)
    i += 1
  return rest, found


def _flags_parser(config_flag):
  def parse(argv):
    global _OVERRIDES
    try:
      if config_flag:
        argv, _OVERRIDES = split_config_overrides(argv, config_flag)
        # ml_collections' config flag reads sys.argv for overrides itself.
        sys.argv[:] = argv
      return flags.FLAGS(argv)
    except Exception as e:  # pylint: disable=broad-except
      if is_expected(e):
        fail(message(e))
      raise
  return parse


def run(main, config_flag: str = ''):
  """absl's app.run(main) with expected errors as one line and exit status 2."""
  def guarded(argv):
    try:
      return main(argv)
    except Exception as e:  # pylint: disable=broad-except
      if is_expected(e):
        fail(message(e))
      raise
  app.run(guarded, flags_parser=_flags_parser(config_flag))
