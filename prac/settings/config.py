"""The experiment configuration: pydantic models. Configuration is data; its hash names a run."""
from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator



TICKET_FORMS = ("all", "last", "none")  # runtime.evaluate_tickets, besides at:S1,S2,…


def ticket_sparsities(evaluate_tickets: str) -> tuple[float, ...]:
    """The sparsities an `at:S1,S2,…` form of runtime.evaluate_tickets lists (each in (0, 1), at least one);
    () for all, last and none. ValueError (one line) for any other text."""
    if evaluate_tickets in TICKET_FORMS:
        return ()
    expected = "all, last, none or at:S1,S2,… (sparsities between 0 and 1, e.g. at:0.79,0.931)"
    if not evaluate_tickets.startswith("at:"):
        raise ValueError(f"expects {expected}, got {evaluate_tickets!r}")
    texts = [t.strip() for t in evaluate_tickets[3:].split(",")]
    if not any(texts):
        raise ValueError(f"{evaluate_tickets!r} lists no sparsity; expected {expected}")
    values = []
    for text in texts:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} in {evaluate_tickets!r} is not a number; expected {expected}") from None
        if not 0.0 < value < 1.0:  # NaN too
            raise ValueError(f"sparsity {text} in {evaluate_tickets!r} is not strictly between 0 and 1")
        values.append(value)
    return tuple(values)


class _Strict(BaseModel):
    # Unknown keys are errors: a typo in --set must not be silently ignored. No setting means an infinite or
    # NaN number (JSON lets `--set lr=Infinity` and `1e999` through).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(_Strict):
    dataset: str  # a name in prac.data.registry.DATASETS, checked where the config is built (prac.build_config)
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    split_seed: int = Field(0, ge=0)  # the train/validation split; shared by every seed and arm so D0 is one set
    augment: bool = True  # random crop (dataset's padding) and flip where the dataset has them
    train_limit: int | None = Field(None, ge=10)  # keep only the first N train images (benchmarks)


class ModelConfig(_Strict):
    name: str  # a name in prac.models' registry, checked where the config is built (prac.build_config)
    # Channels times this, for the models that have a width (conv2, conv4, conv6): a CPU-sized conv net
    # (docs/results.md)
    width: float = Field(1.0, gt=0.0, le=4.0)


class TrainConfig(_Strict):
    epochs: int = Field(gt=0)  # E0: the full schedule of one dense training
    batch_size: int = Field(128, gt=0)
    lr: float = Field(0.1, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    milestones: list[int] = Field(default_factory=list)  # epochs at which the LR is multiplied by gamma
    gamma: float = Field(0.1, gt=0.0, le=1.0)
    # Linear warm-up, per step, over the round's first epochs; early stop's window records from epoch warmup + 2.
    warmup_epochs: int = Field(0, ge=0)
    channels_last: bool = True

    @model_validator(mode="after")
    def _milestones_inside_schedule(self) -> "TrainConfig":
        if sorted(self.milestones) != self.milestones or any(m <= 0 or m > self.epochs for m in self.milestones):
            raise ValueError(f"milestones {self.milestones} must be increasing and within 1..epochs={self.epochs}")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs={self.warmup_epochs} must be below epochs={self.epochs}")
        return self


# Settings that existed once, with what replaced them: naming one (in --set, a config or a flow's parameters) is
# a one-line error that says what to set instead, not an unknown key.
REMOVED_SETTINGS = {
    "prune.prune_linear": "prune.prune_linear was removed: masks now cover every conv and linear weight; set "
                          "prune.linear_rate and prune.output_rate instead (0.0 keeps that type dense, "
                          "unset: prune.rate)",
}


class PruneConfig(_Strict):
    # Each layer type's rate: the fraction of that type's remaining weights a round removes. `rate` is every
    # type's unless its own is set; 0.0 keeps a type dense (its weights stay in the mask and its sparsity).
    rate: float = Field(0.2, gt=0.0, lt=1.0)
    conv_rate: float | None = Field(None, ge=0.0, lt=1.0)  # every Conv2d weight
    linear_rate: float | None = Field(None, ge=0.0, lt=1.0)  # the hidden Linear layers
    output_rate: float | None = Field(None, ge=0.0, lt=1.0)  # the output layer: the network's last Linear
    rounds: int = Field(16, gt=0)
    rewind_epoch: int = Field(3, ge=0)  # k: rewind to the weights after epoch k of round 0 (0: θ0)
    # global: the smallest weights of each layer type's tensors together (the paper, within a type); layerwise:
    # each tensor's type rate of its own remaining weights (Frankle & Carbin's LeNet), so per-layer sparsity
    # cannot drift with how long a round trained.
    scope: Literal["global", "layerwise"] = "global"

    @model_validator(mode="before")
    @classmethod
    def _no_removed_settings(cls, data: object) -> object:
        if isinstance(data, dict) and "prune_linear" in data:
            raise ValueError(REMOVED_SETTINGS["prune.prune_linear"])
        return data

    def type_rates(self) -> dict[str, float]:
        """Layer type (prac.training.masks.LAYER_TYPES) -> its rate."""
        return {"conv": _or(self.conv_rate, self.rate), "linear": _or(self.linear_rate, self.rate),
                "output": _or(self.output_rate, self.rate)}


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


class PracConfig(_Strict):
    forget_threshold: int = Field(0, ge=0)  # E_F: CET = samples with more forgetting events than this
    early_stop: bool = True
    early_stop_eps: float = Field(0.08, gt=0.0, lt=1.0)
    early_stop_window: int = Field(5, gt=0)
    schedule_scaling: Literal["epochs", "iterations"] = "epochs"
    # A floor on a PrAC round's epochs (rounds ≥ 1): short CPU-sized schedules scaled by |P|/|D0| leave
    # rounds too few epochs to learn (and early stop needs window + 2, more with warm-up); never above train.epochs.
    min_epochs: int = Field(1, ge=1)
    use_cep: bool = True
    # The subset methods sized like PrAC (random-, el2n-, entropy-, svp-subset): "prac-run" trains each round on
    # as many samples as the prac run of the same settings and seed did, for as many epochs (equal budget);
    # "own" sizes by their own CET ∪ CEP with their own schedule scaling and early stop.
    budget: Literal["prac-run", "own"] = "prac-run"


class TransferConfig(_Strict):
    """The `transfer` method's source: the run whose per-round PrAC sets it trains on, as
    `<preset>/<fingerprint>` under the output dir (or that folder's path)."""

    source: str | None = None


class RuntimeConfig(_Strict):
    """Where and how to run: not part of the fingerprint, except the precision `precision` resolves to on the
    machine that trains (prac.layout.fingerprint.precision_of). PRAC_OUTPUT_DIR and PRAC_DATA_DIR set the defaults
    of a machine (e.g. a worker's shared volume)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CPU threads for torch; None: OMP_NUM_THREADS if set, else the cores this process may use
    # (affinity and container quota: prac.hardware.device.usable_cores).
    threads: int | None = Field(None, ge=1)
    # Forward passes autocast to: "auto" is bfloat16 where measured faster (a CUDA GPU with bf16, a CPU with
    # native bf16 instructions), else float32 (prac.hardware.precision). The resolved precision keys results.
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    compile: bool = False  # torch.compile the model (measured slower than the default on a GPU: BENCHMARKS.md)
    # On a CUDA device, capture the training step as a CUDA graph and replay it (prac.training.train_step); not with compile.
    cuda_graphs: bool = True
    output_dir: str = Field(default_factory=lambda: os.environ.get("PRAC_OUTPUT_DIR", "prac-runs"), min_length=1)
    data_dir: str | None = Field(default_factory=lambda: os.environ.get("PRAC_DATA_DIR"))
    download: bool = False
    # Retrain which masks (lt reuses its next round): "all", "last", "none", or "at:0.79,0.931": for each listed
    # sparsity the one round whose mask's sparsity is nearest it (ties: the earlier round; prac.imp.imp_loop
    # .ticket_rounds). Kept as the text given, so config.json reads as it was written.
    evaluate_tickets: str = "all"
    # Each round's ticket retrain in a second process, beside the rounds that follow (the two share the cores),
    # instead of before the next round: the same files and records (prac.imp.imp_loop). Gains where one process
    # leaves the machine idle; two processes on one GPU take turns (BENCHMARKS.md §8).
    retrain_alongside: bool = False
    # An experiment's ticket retrains (one per round with evaluate_tickets=all, or two or more at:) trained after
    # its last round, this many at once as one stacked computation (prac.training.stacked). Opt-in, on a GPU too:
    # None or 1: each retrain in its round, one at a time (stacking measured slower on a CPU: BENCHMARKS.md
    # "stacked"; not yet verified on a GPU since its fixes: bench/gpu_check.sh). The same files and records; a
    # stacked ticket agrees with the ticket trained alone to rounding (tests/test_stacked.py).
    stack_tickets: int | None = Field(None, ge=1)
    # The science code's version results are keyed by (prac.code_version); None: a hash of this code's prac/.
    # Set to an earlier run's `code_version` (its config.json, MLflow tag prac.code_version) to reuse its
    # results on purpose after the code changed.
    code_version: str | None = Field(None, pattern=r"^[0-9a-f]{16}$")
    verbose: bool = False

    @field_validator("evaluate_tickets")
    @classmethod
    def _ticket_form(cls, value: str) -> str:
        ticket_sparsities(value)  # ValueError: one line naming the bad part
        return value


class ExperimentConfig(_Strict):
    preset: str
    # A name in prac.strategies.methods.METHODS, checked where the config is built (prac.build_config): the registry
    # sits above the config (its strategies read configs), and a researcher's methods join it at run time.
    method: str = Field("prac", min_length=1)
    seed: int = Field(0, ge=0)
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    prune: PruneConfig = PruneConfig()
    prac: PracConfig = PracConfig()
    transfer: TransferConfig = TransferConfig()
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    @model_validator(mode="after")
    def _rewind_inside_schedule(self) -> "ExperimentConfig":
        if self.prune.rewind_epoch > self.train.epochs:
            raise ValueError(f"prune.rewind_epoch={self.prune.rewind_epoch} is beyond train.epochs={self.train.epochs}")
        if self.prac.min_epochs > self.train.epochs:
            raise ValueError(f"prac.min_epochs={self.prac.min_epochs} is beyond train.epochs={self.train.epochs}")
        return self
