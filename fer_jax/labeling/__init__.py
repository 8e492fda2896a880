"""Labelling a subject's proposed frames: the subject folder's file contract
(files), the local labelling page and its server (server, static/), and Label
Studio interop (label_studio). Needs neither JAX nor a model.
"""
from fer_jax.labeling.files import (LABEL_COLUMNS, STATUSES, TO_LABEL_COLUMNS,
                                    TRACE_COLUMNS, Answer, ContractError, Frame,
                                    Round, append_answers, first_unlabelled,
                                    labels_path, latest_answers, now,
                                    read_answers, read_round, read_trace, rounds,
                                    write_round)
from fer_jax.labeling.label_studio import export_round, read_export
from fer_jax.labeling.server import make_server, serve
