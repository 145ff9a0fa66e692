"""Which samples a round trained on, as the MLflow run's dataset input: the UI's dataset view then lists, round by
round, the set each round trained on (D0, a PrAC set, a subset), its size, and a digest of its sample indices, so
two runs (or rounds) that trained on the same samples show the same digest."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.entities import DatasetInput, InputTag
from mlflow.types import ColSpec, DataType, Schema
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from prac.artifacts import read_prac_set
from prac_lth.tasks import tracking


def indices_digest(indices: np.ndarray) -> str:
    """Of the set of samples, whatever their order."""
    return hashlib.sha256(np.sort(indices).astype("<i8").tobytes()).hexdigest()[:12]


# The dataset's columns, declared: a PandasDataset infers its schema from the frame, and MLflow's inference warns
# (a UserWarning on the terminal, once a round) that integer columns cannot hold missing values. Sample indices and
# labels are integers that are never missing, so the declared schema is the one inference gave, without the warning.
TRAINED_SET_SCHEMA = Schema([ColSpec(DataType.long, "index"), ColSpec(DataType.long, "label")])


class TrainedSet(PandasDataset):
    """A PandasDataset whose schema is TRAINED_SET_SCHEMA rather than inferred."""

    @property
    def schema(self) -> Schema:
        return TRAINED_SET_SCHEMA


def trained_set(prac_set_file: Path, round_index: int) -> TrainedSet:
    """The samples round `round_index` trained on (the `trained` rows of its PrAC-set file), named for the round,
    its source the file on the output folder."""
    prac_set = read_prac_set(prac_set_file).prac_set
    trained = pd.DataFrame({"index": prac_set.index[prac_set.trained], "label": prac_set.label[prac_set.trained]},
                           dtype=np.int64)
    with warnings.catch_warnings():  # a local path may be read as two kinds of local source: both are the same
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        source = resolve_dataset_source(str(Path(prac_set_file).resolve()))
    return TrainedSet(trained, source=source, name=f"round_{round_index:02d}",
                      digest=indices_digest(trained["index"].to_numpy()))


def log_trained_set(run_id: str, round_index: int, prac_set_file: Path) -> None:
    """Logged once however often it is called (MLflow keeps one input per dataset and run)."""
    dataset = trained_set(prac_set_file, round_index)
    tracking.client().log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(),  # what mlflow.log_input logs
                                                       tags=[InputTag(MLFLOW_DATASET_CONTEXT, "train")])])
