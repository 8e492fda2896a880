"""configs/common.parse_arg, the one parser of get_config's argument, and the
configs that use it."""
import pytest

from configs import common
from configs.multitask import sjmt
from configs.personalization import synthetic
from configs.transfer import cascade_001, ulloa_002, zaitouny_004

SPEC = dict(model=('resnet32', 'resnet110', 'vgg16'), reduced=False, size=64,
            lr=0.5, name='x')


@pytest.mark.parametrize('arg,want', [
    (None, dict(model='resnet32', reduced=False, size=64, lr=0.5, name='x')),
    ('', dict(model='resnet32', reduced=False, size=64, lr=0.5, name='x')),
    ('vgg16,reduced', dict(model='vgg16', reduced=True, size=64, lr=0.5,
                           name='x')),
    ('reduced=false, model=resnet110,size=32,lr=1e-3,name=a=b',
     dict(model='resnet110', reduced=False, size=32, lr=0.001, name='a=b')),
])
def test_tokens_and_key_values(arg, want):
  got = common.parse_arg(arg, **SPEC).to_dict()
  assert got == want and type(got['size']) is int and type(got['lr']) is float


@pytest.mark.parametrize('arg,message', [
    ('vgg16,resnet50', "Unknown arguments ['resnet50']; valid: "
                       "model=resnet32|resnet110|vgg16, reduced, size=<int>, "
                       "lr=<float>, name=<str>"),
    ('depth=3', "Unknown arguments ['depth=3']"),
    ('model=vgg19', "Config argument model='vgg19': valid: resnet32, "
                    "resnet110, vgg16"),
    ('size=big', "Config argument size='big': not int"),
    ('reduced=yes', "Config argument reduced='yes': not true or false"),
    ('vgg16,model=resnet110', "Config argument 'model' given twice"),
])
def test_a_bad_argument_is_a_one_line_error(arg, message):
  with pytest.raises(ValueError) as e:
    common.parse_arg(arg, **SPEC)
  assert str(e.value).startswith(message) and '\n' not in str(e.value)


def test_configs_read_their_arguments_with_it():
  # Bare tokens keep their meaning; key=value names the same choice.
  assert synthetic.get_config('reduced').personal.subjects == (0, 1, 2)
  assert synthetic.get_config('reduced=true').personal.subjects == (0, 1, 2)
  assert synthetic.get_config().personal.subjects == ()
  assert sjmt.get_config('resnet110').model.name == 'resnet110'
  assert sjmt.get_config('resnet110').paper
  assert not sjmt.get_config('').paper
  c = ulloa_002.get_config('semaine,resnet152,real')
  assert (c.model.name, c.data.name) == ('resnet152', 'semaine')
  assert ulloa_002.get_config('dataset=semaine,model=resnet152,real=true'
                              ).to_dict() == c.to_dict()
  c = cascade_001.get_config('direct,real,vgg_cnn_m')
  assert (c.model.name, len(c.stages), c.stages[0]['data.name']) == (
      'vgg_cnn_m_2048', 1, 'sfew')
  assert zaitouny_004.get_config('data=real').data.name == 'kdef'
  for get in (synthetic.get_config, sjmt.get_config, ulloa_002.get_config,
              cascade_001.get_config, zaitouny_004.get_config):
    with pytest.raises(ValueError, match=r"Unknown arguments \['nope'\]"):
      get('nope')


@pytest.mark.parametrize('arg,want', [
    ('reduced', True), ('real, reduced', True), ('reduced=true', True),
    ('reduced=1', True), ('reduced=False', False), ('reduced=0', False),
    ('', False), ('real', False)])
def test_paper_runs_reads_reduced_as_the_configs_do(arg, want):
  from launch import paper_runs
  assert paper_runs._reduced(arg) is want  # pylint: disable=protected-access


def test_paper_runs_refuses_a_reduced_the_configs_refuse():
  from launch import paper_runs
  with pytest.raises(ValueError, match="reduced='yes': not true or false"):
    paper_runs._reduced('reduced=yes')  # pylint: disable=protected-access
