"""What every stage of one experiment shares: its config, its data on the device, a model factory."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import torch
from torch import nn

from prac.imp.bounds import check_bounds, round_sparsities, shape_model
from prac.settings.config import ExperimentConfig
from prac.data.device_data import DeviceData, to_device_data
from prac.data.digest import data_digest
from prac.data.registry import load_dataset
from prac.hardware.device import configure_threads, select_device
from prac.layout.fingerprint import fingerprint, precision_of, round0_fingerprint
from prac.seeds import seed_for
from prac.hardware.host_memory import keep_freed_memory
from prac.strategies.methods import Method, get_method
from prac.models import build_model
from prac.hardware.placement import to_device
from prac.training.masks import LayerType, layer_types, prunable_parameters
from prac.training.pruning import PruneRule
from prac.hardware.precision import AUTOCAST_DTYPES

T = TypeVar("T")

# torch.compile options of `runtime.compile`. dynamic=True: one graph for every batch size (the last,
# partial batch of an epoch differs in every round's subset, and evaluation batches are larger), where
# the default would compile a static graph first and recompile at the first other size.
COMPILE_OPTIONS: dict[str, Any] = {"dynamic": True}


@dataclass
class ExperimentContext:
    config: ExperimentConfig
    data: DeviceData
    device: torch.device
    data_digest: str  # the content of the data as loaded (prac.data.digest): keys round 0 and what follows
    _compiled: nn.Module | None = field(default=None, repr=False)  # runtime.compile: the one compiled model
    _theta0: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.config)

    @property
    def round0_fingerprint(self) -> str:
        return round0_fingerprint(self.config)

    @property
    def method(self) -> Method:
        return get_method(self.config.method)

    def place(self, tree: T) -> T:
        """What was read from disk (CPU tensors), on the training device: the one place it is moved."""
        return to_device(tree, self.device)

    def new_model(self) -> nn.Module:
        """The model at θ0: the same weights for every arm of one seed.

        With `runtime.compile`, the experiment's process compiles one model and hands out that same
        module each time, reset to θ0, so the graphs compiled in round 0 serve every later stage (train,
        CEP predictions, retrain) and round, whatever a torch version's guards key on (the module
        instance included). Callers use the model before asking for the next one (the steps run one
        after another).
        """
        if not self.config.runtime.compile:
            return self._build()
        if self._compiled is None:
            model = self._build()
            self._theta0 = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model.compile(**COMPILE_OPTIONS)  # in place: parameter names and state_dict keys stay the model's own
            self._compiled = model
        else:
            self._compiled.load_state_dict(self._theta0)
        return self._compiled

    @cached_property
    def _prunable_shapes(self) -> tuple[dict[str, LayerType], dict[str, int]]:
        """Each prunable weight's layer type and size, read once from the model's shapes alone (every prune
        stage and round record asks)."""
        model = shape_model(self.config, self.data)
        return layer_types(model), {name: p.numel() for name, p in prunable_parameters(model).items()}

    def layer_types(self) -> dict[str, LayerType]:
        """Each prunable weight's layer type (conv, linear, output)."""
        return self._prunable_shapes[0]

    def prune_rule(self) -> PruneRule:
        """How this experiment's rounds prune: its layer types at the config's rates and scope."""
        prune = self.config.prune
        return PruneRule(self.layer_types(), prune.type_rates(), prune.scope)

    @cached_property
    def _round_sparsities(self) -> list[float]:
        return round_sparsities(self._prunable_shapes[1], self.prune_rule(), self.config.prune.rounds)

    def round_sparsities(self) -> list[float]:
        """Each round's mask sparsity, known before the rounds train (prac.imp.bounds.round_sparsities): what
        runtime.evaluate_tickets=at: picks its rounds by."""
        return list(self._round_sparsities)

    def reinit_state(self) -> dict[str, torch.Tensor]:
        """A fresh random initialisation, independent of θ0 (the random-reinit method's tickets)."""
        return self._build("reinit").state_dict()

    def _build(self, init: str = "init") -> nn.Module:
        channels, height, _ = self.data.image_shape
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_for(self.config.seed, init))
            model = build_model(self.config.model.name, in_channels=channels,
                                num_classes=self.data.num_classes, image_size=height,
                                width=self.config.model.width)
        return model.to(self.device)


def build_context(config: ExperimentConfig) -> ExperimentContext:
    device = select_device(config.runtime.device)
    configure_threads(config.runtime.threads)
    if device.type == "cpu":
        keep_freed_memory()  # activations are not page-faulted in again every step (BENCHMARKS.md 9)
    raw = load_dataset(config.data.dataset, config.runtime.data_dir, config.runtime.download)
    # the precision the fingerprint was keyed by (one resolution for both)
    data = to_device_data(raw, config.data, device, AUTOCAST_DTYPES[precision_of(config)])
    data.graphs = config.runtime.cuda_graphs and not config.runtime.compile
    check_bounds(config, data)  # what no run of this data and model can complete, before anything is written
    return ExperimentContext(config, data, device, data_digest(raw))
