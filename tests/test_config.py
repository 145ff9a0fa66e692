"""Configuration: presets (Table 1 values), `--set` overrides, fingerprints and derived seeds."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from prac.settings import overrides
from prac.build_config import build_config
from prac.settings.config import DataConfig, ExperimentConfig, PracConfig, PruneConfig, RuntimeConfig, TrainConfig
from prac.hardware.device import training_device
from prac.errors import UserError
from prac.layout.fingerprint import fingerprint, result_fields as fingerprint_fields, round0_fingerprint
from prac.settings.overrides import apply_overrides, resolve_key
from prac.hardware.precision import resolve_precision
from prac.settings.presets import PRESETS, preset_config, preset_names
from prac.seeds import seed_for
from prac.strategies.methods import METHODS

PAPER_MODELS = {
    "cifar10": ("resnet20", "resnet56", "vgg16"),
    "cifar100": ("resnet20", "resnet56", "vgg16"),
}
PAPER_BASE = [f"{d}-{m}" for d, models in PAPER_MODELS.items() for m in models] + [
    "tinyimagenet-resnet18",
    "tinyimagenet-vgg16",
]
VARIANT_BASES = [f"{d}-{m}" for d in ("cifar10", "cifar100") for m in ("resnet20", "resnet56")]
REQUIRED = ["digits-smoke", "digits", "fashion-lenet", "fashion-conv", "fashion-conv6", *PAPER_BASE] + [
    f"{base}-{variant}" for base in VARIANT_BASES for variant in ("low", "warmup")
]
PAPER_ALL = PAPER_BASE + [f"{base}-{variant}" for base in VARIANT_BASES for variant in ("low", "warmup")]


def smoke(*items: str) -> ExperimentConfig:
    return apply_overrides(preset_config("digits-smoke"), list(items))


# ---------------------------------------------------------------- presets


def test_the_presets_the_design_names_exist():
    missing = sorted(set(REQUIRED) - set(preset_names()))
    assert not missing, f"presets missing: {missing}"
    assert preset_names() == list(PRESETS)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_validates(name):
    config = preset_config(name)
    assert isinstance(config, ExperimentConfig)
    assert config.preset == name
    assert config.method == "prac" and config.seed == 0
    # Milestones and warm-up fit into the schedule, and the rewind point into round 0.
    assert all(0 < m <= config.train.epochs for m in config.train.milestones)
    assert config.prune.rewind_epoch <= config.train.epochs


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_names_a_known_dataset_and_model(name):
    from prac.data.registry import DATASETS
    from prac.models.registry import MODELS

    config = preset_config(name)
    assert config.data.dataset in DATASETS
    assert config.model.name in MODELS


@pytest.mark.parametrize("name", PAPER_ALL)
def test_paper_presets_carry_table1_values(name):
    config = preset_config(name)
    train, prune = config.train, config.prune
    assert train.epochs == 182
    assert train.milestones == [91, 136]
    assert train.gamma == pytest.approx(0.1)
    assert train.momentum == pytest.approx(0.9)
    assert train.weight_decay == pytest.approx(1e-4)
    assert prune.rounds == 16
    assert prune.rate == pytest.approx(0.2)
    # 16 rounds of 20% reach 97.2% sparsity.
    assert 1 - (1 - prune.rate) ** prune.rounds == pytest.approx(0.972, abs=5e-4)
    expected_batch = 512 if name.startswith("tinyimagenet") else 128
    assert train.batch_size == expected_batch
    if name.endswith("-low"):
        assert train.lr == pytest.approx(0.01)
        assert prune.rewind_epoch == 0
        assert train.warmup_epochs == 0
    elif name.endswith("-warmup"):
        assert train.lr == pytest.approx(0.03)
        assert train.warmup_epochs == 15
        assert prune.rewind_epoch == 0
    else:
        assert train.lr == pytest.approx(0.1)
        assert prune.rewind_epoch == 3
        assert train.warmup_epochs == 0


@pytest.mark.parametrize("name", PAPER_ALL)
def test_paper_presets_use_their_dataset_and_model(name):
    config = preset_config(name)
    dataset, model = name.split("-")[:2]
    assert config.data.dataset == {"cifar10": "cifar10", "cifar100": "cifar100", "tinyimagenet": "tiny-imagenet"}[dataset]
    assert config.model.name == model
    assert config.prac.early_stop_eps == pytest.approx(0.08)
    assert config.prac.schedule_scaling == "epochs"


def test_variants_differ_from_their_base_only_in_lr_warmup_and_rewind():
    for base in VARIANT_BASES:
        plain = preset_config(base).model_dump(exclude={"preset"})
        for variant in ("low", "warmup"):
            other = preset_config(f"{base}-{variant}").model_dump(exclude={"preset"})
            for section in ("train", "prune"):
                for key in ("lr", "warmup_epochs", "rewind_epoch"):
                    plain[section].pop(key, None)
                    other[section].pop(key, None)
            assert other == plain, f"{base}-{variant}"


def test_offline_presets():
    smoke_config = preset_config("digits-smoke")
    assert smoke_config.data.dataset == "digits"
    # Early stop needs window + 2 epochs; the smoke preset must leave it a chance to fire.
    assert smoke_config.train.epochs >= smoke_config.prac.early_stop_window + 2
    lenet = preset_config("fashion-lenet")
    assert lenet.data.dataset == "fashion-mnist" and lenet.model.name == "lenet300"
    assert preset_config("fashion-conv").data.dataset == "fashion-mnist"
    # The defaults docs/results.md measured: no crop/flip for the MLP, LR 0.05, the paper's iteration
    # scaling (12-epoch rounds scaled by epochs leave PrAC 2-4 epochs); rounds to at least 95 % sparsity.
    assert (lenet.data.augment, lenet.train.lr, lenet.prac.schedule_scaling) == (False, 0.05, "iterations")
    for name in ("fashion-lenet", "fashion-conv"):  # the hidden linear layers, the bulk of their weights
        config = preset_config(name)
        assert 1 - (1 - config.prune.type_rates()["linear"]) ** config.prune.rounds >= 0.95, name


# Frankle & Carbin (2019), Figure 2: each network's rates per layer type (conv, hidden linear, output).
LTH_RATES = {"conv2": (0.1, 0.2, 0.1), "conv4": (0.1, 0.2, 0.1), "conv6": (0.15, 0.2, 0.1), "lenet300": (0.2, 0.2, 0.1)}


@pytest.mark.parametrize("name", ["digits-smoke", "digits", "fashion-lenet", "fashion-conv", "fashion-conv6"])
def test_offline_presets_carry_the_lottery_ticket_rates(name):
    config = preset_config(name)
    rates = config.prune.type_rates()
    expected = LTH_RATES[config.model.name]
    assert (rates["conv"], rates["linear"], rates["output"]) == expected
    assert config.prune.scope == "global"


@pytest.mark.parametrize("name", PAPER_ALL)
def test_paper_presets_prune_the_convolutions_only(name):
    prune = preset_config(name).prune
    assert prune.type_rates() == {"conv": 0.2, "linear": 0.0, "output": 0.0} and prune.scope == "global"


def test_each_type_rate_defaults_to_rate_and_zero_keeps_it_dense():
    assert PruneConfig(rate=0.3).type_rates() == {"conv": 0.3, "linear": 0.3, "output": 0.3}
    assert PruneConfig(rate=0.3, output_rate=0.0, conv_rate=0.1).type_rates() == {"conv": 0.1, "linear": 0.3,
                                                                                  "output": 0.0}
    assert smoke("output_rate=0").prune.type_rates()["output"] == 0.0
    assert smoke("prune.conv_rate=null").prune.type_rates()["conv"] == smoke().prune.rate
    for bad in ("conv_rate=1", "linear_rate=-0.1", "output_rate=1.5"):
        with pytest.raises(UserError, match=f"prune.{bad.split('_rate')[0]}_rate"):
            smoke(bad)


@pytest.mark.parametrize("item", ["prune_linear=true", "prune.prune_linear=false"])
def test_the_removed_prune_linear_is_a_one_line_error_naming_the_rates(item):
    with pytest.raises(UserError) as info:
        build_config("digits-smoke", "prac", 0, [item])
    message = str(info.value)
    assert "\n" not in message and "prune.prune_linear was removed" in message
    assert "prune.linear_rate" in message and "prune.output_rate" in message


def test_a_config_naming_prune_linear_is_refused_as_well():  # a flow's config parameter, an old config.json
    data = preset_config("digits-smoke").model_dump()
    data["prune"]["prune_linear"] = True
    with pytest.raises(ValueError, match="prune.prune_linear was removed: .*prune.linear_rate"):
        ExperimentConfig.model_validate(data)


def test_preset_config_returns_independent_configs():
    a = preset_config("cifar10-resnet20")
    a.train.milestones.append(150)
    a.train.lr = 0.5
    b = preset_config("cifar10-resnet20")
    assert b.train.milestones == [91, 136] and b.train.lr == pytest.approx(0.1)


def test_unknown_preset_is_a_user_error():
    with pytest.raises(UserError) as info:
        preset_config("cifar10-resnet21")
    assert "cifar10-resnet21" in str(info.value)
    assert "\n" not in str(info.value)


def test_preset_config_sets_top_level_fields():
    config = preset_config("digits-smoke", method="lt", seed=7)
    assert config.method == "lt" and config.seed == 7


# ---------------------------------------------------------------- overrides


def test_override_by_dotted_path_and_by_leaf_name():
    assert smoke("train.epochs=12").train.epochs == 12
    assert smoke("epochs=12").train.epochs == 12
    assert smoke("prune.rounds=5").prune.rounds == 5
    assert smoke("rounds=5").prune.rounds == 5
    assert smoke("seed=3").seed == 3
    assert smoke("runtime.device=cpu").runtime.device == "cpu"


def test_override_values_are_json():
    config = smoke("lr=0.25", "batch_size=32", "augment=false", "milestones=[2, 5]", "linear_rate=0.3",
                   "early_stop_eps=1e-2", "train_limit=100")
    assert config.train.lr == 0.25 and isinstance(config.train.lr, float)
    assert config.train.batch_size == 32 and isinstance(config.train.batch_size, int)
    assert config.data.augment is False
    assert config.train.milestones == [2, 5]
    assert config.prune.linear_rate == 0.3
    assert config.prac.early_stop_eps == pytest.approx(0.01)
    assert config.data.train_limit == 100
    assert smoke("augment=False").data.augment is False  # case-insensitive booleans
    assert smoke("train_limit=100", "train_limit=null").data.train_limit is None  # the last one wins
    assert smoke("milestones=[]").train.milestones == []


def test_override_string_values():
    assert smoke("method=lt").method == "lt"
    assert smoke("schedule_scaling=iterations").prac.schedule_scaling == "iterations"
    assert smoke("evaluate_tickets=none").runtime.evaluate_tickets == "none"
    assert smoke("evaluate_tickets=last").runtime.evaluate_tickets == "last"


def test_evaluate_tickets_at_listed_sparsities():
    from prac.settings.config import ticket_sparsities

    config = smoke("runtime.evaluate_tickets=at:0.79,0.931")
    assert config.runtime.evaluate_tickets == "at:0.79,0.931"  # the text as given, in config.json too
    assert json.loads(config.model_dump_json())["runtime"]["evaluate_tickets"] == "at:0.79,0.931"
    assert ticket_sparsities(config.runtime.evaluate_tickets) == (0.79, 0.931)
    assert ticket_sparsities("at: 0.5") == (0.5,) and ticket_sparsities("at:1e-3,.2,0.2") == (0.001, 0.2, 0.2)
    assert ticket_sparsities("all") == ticket_sparsities("last") == ticket_sparsities("none") == ()
    assert smoke("evaluate_tickets=at:0.5").runtime.evaluate_tickets == "at:0.5"  # the unique leaf name too


@pytest.mark.parametrize("value, fragment", [
    ("at:", "lists no sparsity"), ("at: ,", "lists no sparsity"), ("at:0.5,x", "'x' in 'at:0.5,x' is not a number"),
    ("at:0.5,,0.6", "'' in 'at:0.5,,0.6' is not a number"), ("at:0", "sparsity 0 in 'at:0'"),
    ("at:1", "not strictly between 0 and 1"), ("at:1.5", "sparsity 1.5"), ("at:-0.2", "sparsity -0.2"),
    ("at:nan", "sparsity nan"), ("at:79%", "'79%'"), ("0.79", "expects all, last, none or at:"),
    ("ALL", "got 'ALL'"), ("at0.5", "got 'at0.5'"), ("null", "got 'null'"),
])
def test_a_bad_evaluate_tickets_is_one_line(value, fragment):
    message = _one_line_user_error(f"runtime.evaluate_tickets={value}")
    assert "runtime.evaluate_tickets" in message and fragment in message, message


def test_text_fields_stay_text_even_when_they_look_like_json():
    # A directory called 2024 (or true) must not turn into a number (or a bool) and fail validation.
    assert smoke("runtime.output_dir=2024").runtime.output_dir == "2024"
    assert smoke("output_dir=true").runtime.output_dir == "true"
    assert smoke("data_dir=123").runtime.data_dir == "123"
    assert smoke("data_dir=/tmp/x", "data_dir=null").runtime.data_dir is None


def test_override_does_not_touch_the_original():
    base = preset_config("digits-smoke")
    changed = apply_overrides(base, ["epochs=20", "milestones=[10]"])
    assert changed.train.epochs == 20
    assert base.train.epochs == 8 and base.train.milestones == [6]


def test_resolve_key():
    assert resolve_key("early_stop_window") == "prac.early_stop_window"
    assert resolve_key("prac.early_stop_window") == "prac.early_stop_window"
    assert resolve_key("split_seed") == "data.split_seed"
    assert resolve_key("seed") == "seed"  # a top-level name is itself, not a suffix match


def _one_line_user_error(*items: str) -> str:
    with pytest.raises(UserError) as info:
        smoke(*items)
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_unknown_key():
    message = _one_line_user_error("train.epoch=5")
    assert "train.epoch" in message and "unknown" in message
    assert "unknown" in _one_line_user_error("learning_rate=0.1")
    assert "unknown" in _one_line_user_error("train=5")  # a section is not a field


def test_ambiguous_key(monkeypatch):
    # No leaf name of the real config is ambiguous today; the rule must still refuse to guess.
    monkeypatch.setattr(overrides, "LEAF_PATHS", [*overrides.LEAF_PATHS, "extra.epochs"])
    with pytest.raises(UserError) as info:
        resolve_key("epochs")
    message = str(info.value)
    assert "ambiguous" in message and "train.epochs" in message and "extra.epochs" in message
    assert "\n" not in message
    assert resolve_key("train.epochs") == "train.epochs"  # the full path still works


def test_malformed_assignment():
    assert "key=value" in _one_line_user_error("epochs")
    assert "key=value" in _one_line_user_error("=5")


@pytest.mark.parametrize(
    "items, where",
    [
        (["epochs=-1"], "train.epochs"),
        (["epochs=0"], "train.epochs"),
        (["epochs=5"], "milestones"),  # digits-smoke's milestone 6 is beyond 5 epochs
        (["milestones=[3, 9]"], "milestones"),
        (["milestones=[5, 3]"], "milestones"),
        (["lr=0"], "train.lr"),
        (["lr=fast"], "train.lr"),
        (["batch_size=1.5"], "train.batch_size"),
        (["rate=1.5"], "prune.rate"),
        (["rewind_epoch=9"], "rewind_epoch"),
        (["warmup_epochs=8"], "warmup_epochs"),
        (["schedule_scaling=steps"], "schedule_scaling"),
        (["min_epochs=9"], "min_epochs"),
        (["min_epochs=0"], "prac.min_epochs"),
        (["device=tpu"], "runtime.device"),
        (["evaluate_tickets=some"], "evaluate_tickets"),
        (["milestones=7"], "train.milestones"),
        (["val_fraction=0.9"], "data.val_fraction"),
    ],
)
def test_invalid_values(items, where):
    message = _one_line_user_error(*items)
    assert where in message


def test_an_unknown_method_is_refused_where_the_config_is_built():
    # The registry sits above the config (researchers add methods at run time): build_config checks the name.
    with pytest.raises(UserError, match="unknown method 'foo' \\(known: prac, lt,"):
        build_config("digits-smoke", "prac", 0, ["method=foo"])


def test_several_problems_in_one_line():
    message = _one_line_user_error("lr=-1", "momentum=2")
    assert "train.lr" in message and "train.momentum" in message


def test_unknown_fields_are_rejected_by_the_models():
    with pytest.raises(ValueError):
        TrainConfig(epochs=5, learning_rate=0.1)
    with pytest.raises(ValueError):
        ExperimentConfig.model_validate({**preset_config("digits-smoke").model_dump(), "extra": 1})


# ---------------------------------------------------------------- fingerprints

_FP_SCRIPT = (
    "from prac.settings.presets import preset_config;"
    "from prac.settings.overrides import apply_overrides;"
    "from prac.layout.fingerprint import fingerprint, round0_fingerprint;"
    "c = apply_overrides(preset_config('cifar10-resnet20'), ['seed=3', 'method=lt', 'lr=0.05']);"
    "print(fingerprint(c), round0_fingerprint(c))"
)


def test_fingerprint_is_stable_across_processes():
    here = apply_overrides(preset_config("cifar10-resnet20"), ["seed=3", "method=lt", "lr=0.05"])
    expected = f"{fingerprint(here)} {round0_fingerprint(here)}"
    for hash_seed in ("0", "12345"):  # str hashing differs per process: the fingerprint must not
        out = subprocess.run([sys.executable, "-c", _FP_SCRIPT], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert out.stdout.strip() == expected


def test_fingerprint_is_a_short_hex_string():
    fp = fingerprint(preset_config("digits-smoke"))
    assert len(fp) >= 12 and int(fp, 16) >= 0
    assert fp == fingerprint(preset_config("digits-smoke"))


def test_fingerprint_changes_with_seed_and_method():
    base = fingerprint(smoke())
    assert fingerprint(smoke("seed=1")) != base
    assert fingerprint(smoke("method=lt")) != base
    assert fingerprint(smoke("method=random")) != base
    assert fingerprint(smoke("method=lt")) != fingerprint(smoke("method=random"))


def _changed_value(value, field_name):
    """A different valid value for a field of digits-smoke."""
    special = {
        "epochs": 10, "milestones": [4], "warmup_epochs": 2, "momentum": 0.5, "gamma": 0.5,
        "rate": 0.3, "linear_rate": 0.3, "rewind_epoch": 2, "early_stop_eps": 0.05, "val_fraction": 0.2,
        "train_limit": 500, "schedule_scaling": "iterations", "scope": "layerwise", "budget": "own", "dataset": "fashion-mnist", "name": "lenet300",
    }
    if field_name in special:
        return special[field_name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.5
    raise AssertionError(f"no changed value for {field_name}={value!r}")


@pytest.mark.parametrize(
    "section, model",
    [("train", TrainConfig), ("prune", PruneConfig), ("prac", PracConfig), ("data", DataConfig)],
)
def test_fingerprint_changes_with_every_result_field(section, model):
    for name in model.model_fields:
        # A config.prac setting changes the fingerprint of the methods that read it (prac's, or budget's readers).
        reader = "prac" if section != "prac" or name in METHODS.get("prac").reads else \
            next(m for m in METHODS if name in METHODS.get(m).reads)
        base_config = smoke(f"method={reader}")
        base = fingerprint(base_config)
        value = getattr(getattr(base_config, section), name)
        changed = apply_overrides(base_config, [f"{section}.{name}={_json(_changed_value(value, name))}"])
        assert getattr(getattr(changed, section), name) != value
        assert fingerprint(changed) != base, f"{section}.{name} does not change the fingerprint"


def test_fingerprint_changes_with_model():
    assert fingerprint(smoke("model.name=conv4")) != fingerprint(smoke())


def _json(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def test_fingerprint_ignores_runtime_fields():
    base = smoke("runtime.precision=float32")  # the precision is pinned: "auto" depends on the device
    for items in (
        ["runtime.output_dir=/somewhere/else"],
        ["runtime.device=cpu"],
        ["runtime.data_dir=/data"],
        ["runtime.verbose=true"],
        ["runtime.download=true"],
        ["runtime.evaluate_tickets=none"],
        ["runtime.evaluate_tickets=at:0.5,0.8"],
        ["runtime.threads=1"],
        ["runtime.compile=true"],
        ["runtime.cuda_graphs=false"],
        ["runtime.retrain_alongside=true"],
        ["runtime.stack_tickets=4"],  # tickets to rounding, like the device (docs/howto/gpu.md, stacked tickets)
        ["runtime.code_version=0123456789abcdef"],  # keys the caches (tests/test_caching.py), not the run's name
    ):
        changed = apply_overrides(base, items)
        assert changed != base
        assert fingerprint(changed) == fingerprint(base), items
        assert round0_fingerprint(changed) == round0_fingerprint(base), items
    assert set(RuntimeConfig.model_fields) == {"device", "output_dir", "data_dir", "download",
                                               "evaluate_tickets", "verbose", "threads", "precision", "compile",
                                               "cuda_graphs", "code_version", "retrain_alongside", "stack_tickets"}, \
        "new runtime field: test it above"


def test_the_precision_trained_in_keys_the_result_and_float32_keeps_the_names_from_before():
    float32, bfloat16 = smoke("runtime.precision=float32"), smoke("runtime.precision=bfloat16")
    assert "precision" not in fingerprint_fields(float32)  # earlier float32 runs keep their folders
    assert fingerprint_fields(bfloat16)["precision"] == "bfloat16"
    assert fingerprint(float32) != fingerprint(bfloat16)
    assert round0_fingerprint(float32) != round0_fingerprint(bfloat16)  # round 0 differs in bfloat16 too
    # "auto" is keyed by what it resolves to on this machine, so it shares the explicit setting's results
    resolved = resolve_precision("auto", training_device("auto"), "conv2")
    assert fingerprint(smoke()) == fingerprint(smoke(f"runtime.precision={resolved}"))


def test_round0_fingerprint_is_shared_by_the_arms():
    prac, lt, rand = smoke("method=prac"), smoke("method=lt"), smoke("method=random")
    assert round0_fingerprint(prac) == round0_fingerprint(lt) == round0_fingerprint(rand)
    assert len({fingerprint(prac), fingerprint(lt), fingerprint(rand)}) == 3
    # What only later rounds use leaves round 0 alone: a 2-round lt arm shares round 0 with a 3-round prac arm.
    for item in ("rounds=2", "forget_threshold=1", "use_cep=false", "schedule_scaling=iterations", "min_epochs=3"):
        assert round0_fingerprint(smoke(item)) == round0_fingerprint(prac), item
        assert fingerprint(smoke(item)) != fingerprint(prac), item


def test_a_setting_added_later_leaves_earlier_fingerprints_alone():
    # prune.scope came after results existed: at its default it is not hashed, so those results keep their names.
    base = smoke()
    assert "scope" not in fingerprint_fields(base)["prune"]
    assert fingerprint(apply_overrides(base, ["prune.scope=global"])) == fingerprint(base)
    layerwise = apply_overrides(base, ["prune.scope=layerwise"])
    assert fingerprint(layerwise) != fingerprint(base) and round0_fingerprint(layerwise) != round0_fingerprint(base)
    # model.width likewise: width 1 is every conv run from before it.
    assert "width" not in fingerprint_fields(base)["model"]
    narrow = apply_overrides(base, ["model.width=0.5"])
    assert fingerprint(narrow) != fingerprint(base) and round0_fingerprint(narrow) != round0_fingerprint(base)


@pytest.mark.parametrize("method", ["lt", "random"])
def test_full_data_arms_ignore_the_prac_rounds_settings(method):
    # A sweep of PrAC's settings must find the lt and random runs it already has.
    base = smoke(f"method={method}")
    for item in ("schedule_scaling=iterations", "min_epochs=3", "use_cep=false", "early_stop=false",
                 "early_stop_eps=0.05", "early_stop_window=4"):
        assert fingerprint(apply_overrides(base, [item])) == fingerprint(base), item
    # CET is still computed for them, and everything else counts.
    for item in ("forget_threshold=1", "epochs=9", "rate=0.3"):
        assert fingerprint(apply_overrides(base, [item])) != fingerprint(base), item


@pytest.mark.parametrize(
    "item",
    ["seed=1", "epochs=9", "lr=0.07", "batch_size=32", "milestones=[5]", "rewind_epoch=2", "split_seed=1",
     "val_fraction=0.2", "model.name=conv4", "augment=false", "early_stop_eps=0.05", "early_stop_window=4",
     "rate=0.3", "conv_rate=0.3", "output_rate=0"],
)
def test_round0_fingerprint_changes_with_what_round0_depends_on(item):
    assert round0_fingerprint(smoke(item)) != round0_fingerprint(smoke())


def test_round0_fingerprint_differs_from_fingerprint():
    config = smoke()
    assert round0_fingerprint(config) != fingerprint(config)


# ---------------------------------------------------------------- derived seeds


def test_seed_for_is_deterministic_and_63_bit():
    values = [seed_for(s, label, i) for s in range(3) for label in ("epoch", "init") for i in range(20)]
    assert values == [seed_for(s, label, i) for s in range(3) for label in ("epoch", "init") for i in range(20)]
    assert all(0 <= v < 2**63 for v in values)
    assert len(set(values)) == len(values)


def test_seed_for_gives_different_streams_for_different_labels():
    assert seed_for(0, "init") != seed_for(0, "epoch", 0)
    assert seed_for(0, "epoch", 0) != seed_for(0, "epoch", 1)
    assert seed_for(0, "epoch", 1) != seed_for(1, "epoch", 1)
    assert seed_for(0, "random-prune", 0) != seed_for(0, "epoch", 0)
    assert seed_for(0, "a", "b") != seed_for(0, "ab")

    import torch

    a = torch.rand(100, generator=torch.Generator().manual_seed(seed_for(0, "epoch", 0)))
    b = torch.rand(100, generator=torch.Generator().manual_seed(seed_for(0, "epoch", 1)))
    assert not torch.equal(a, b)
