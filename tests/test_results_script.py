"""bench/results.py, the script behind docs/results.md, on a tiny setting: it runs what is missing, reads
finished experiments back, and writes the figures and tables.md with each setting's command."""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from prac.errors import UserError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import results  # noqa: E402

pytestmark = pytest.mark.slow

TINY = results.Setting("smoke", "digits-smoke", ("prune.rounds=2",), ("prac", "lt", "synflow"), seeds=(0, 1))


def test_results_script_writes_figures_and_tables_and_reads_runs_back(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    with pytest.raises(UserError, match="unfinished experiments"):
        results.write_results([TINY], out, str(runs), run=False)
    assert results.main(["--only", "lenet-epochs", "--no-run", "--output-dir", str(runs), "--out", str(out)]) == 2
    tables = results.write_results([TINY], out, str(runs), run=True)
    text = (out / "tables.md").read_text()
    assert TINY.command() in text and "--engine-only" in TINY.command()
    assert "prac vs lt:" in text and "| smoke |" in text
    assert "#### Paired over 2 seed(s)" in text and "##### against prac" in text  # synflow against both
    for name in ("smoke-accuracy.png", "smoke-iterations.png", "smoke-sets.png", "smoke-masks.png", "smoke-paired.png",
                 "tradeoff.png"):
        assert plt.imread(out / name).shape[0] > 300, name
    masks = results.similarity(TINY, str(runs))
    assert set(masks["pair"]) == {"prac vs lt, same seed", "synflow vs lt, same seed", "lt vs lt, two seeds"}
    assert len(masks) == 3 * 2 and masks["similarity"].between(0, 1).all()
    by_round = masks.groupby("round")["sparsity"]  # of all conv and linear weights, the same for every pair
    assert (by_round.nunique() == 1).all() and 0 < by_round.first()[0] < by_round.first()[1] < 1
    synflow = next(line for line in text.splitlines() if line.startswith("| synflow |"))
    assert synflow.count("±") == len(results.GAPS_AT) and "| 100.0 % |" in synflow  # at prac's budget
    layers = results.layer_analysis(TINY, str(runs), (0, 1))
    assert len(layers) == 2 * 5  # rounds 0 and 1 × conv2's prunable tensors (two convs and three linear layers)
    sparsity, growth = layers["sparsity"].to_numpy(), layers["growth"].to_numpy()
    assert ((sparsity > 0) & (sparsity < 1)).all() and (growth > 0).all()
    assert "kept-weight growth" in text
    # Read back without training: the same numbers.
    again = results.write_results([TINY], tmp_path / "again", str(runs), run=False)
    assert again[TINY].equals(tables[TINY])
    assert (tmp_path / "again" / "tables.md").read_text() == text


def test_every_setting_is_a_valid_command():
    for setting in results.SETTINGS:
        assert len(results.configs(setting, None)) == len(setting.methods) * len(setting.seeds)
    assert len({s.name for s in results.SETTINGS}) == len(results.SETTINGS)
