"""What a run prints: its round lines and its table, read as a newcomer reads them (no bare nan; a round
whose own model collapsed is said in words, the number kept)."""
from __future__ import annotations


from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.reporting.report import collapse_notes, late_ticket_line, print_rounds, round_line
from prac.imp.round_record import RoundRecord

NAN = float("nan")


def _record(round_index: int, test_acc: float, ticket: float, **changes) -> RoundRecord:
    fields = dict(round=round_index, sparsity=1 - 0.8 ** (round_index + 1), conv_sparsity=1 - 0.9 ** (round_index + 1),
                  linear_sparsity=1 - 0.8 ** (round_index + 1), output_sparsity=1 - 0.9 ** (round_index + 1),
                  trained_sparsity=0.0,
                  train_set_size=257, prac_set_size=1208, prac_set_fraction=0.93, cet_size=300, cep_size=951,
                  epochs_run=3, early_stopped=False, train_iterations=30, cumulative_iterations=500,
                  best_val_acc=test_acc, test_acc=test_acc, ticket_test_acc=ticket, extra_forward_passes=10)
    return RoundRecord(**{**fields, **changes})


def _config(method: str, *overrides: str):
    return apply_overrides(preset_config("digits-smoke", runtime={"device": "cpu"}), [f"method={method}", *overrides])


def test_round_line_says_where_an_lt_ticket_comes_from_instead_of_nan():
    lt = _config("lt", "prune.rounds=3")
    line = round_line(lt, _record(1, 0.97, NAN))
    assert "nan" not in line and "ticket: round 2's training" in line and "model 0.9700" in line
    assert "ticket 0.9800" in round_line(lt, _record(2, 0.97, 0.98))  # the last round is retrained
    assert late_ticket_line(lt, _record(1, 0.97, 0.9733)) == "round 1: ticket 0.9733 (round 2's training, mask 0.360)"
    skipped = round_line(_config("prac", "runtime.evaluate_tickets=none"), _record(1, 0.97, NAN))
    assert "nan" not in skipped and "ticket not retrained (runtime.evaluate_tickets=none)" in skipped


def test_a_ticket_retrained_beside_the_next_rounds_is_said_so_and_later_given():
    prac = _config("prac", "runtime.retrain_alongside=true")
    assert "ticket: retraining beside the next rounds" in round_line(prac, _record(1, 0.97, NAN))
    assert late_ticket_line(prac, _record(1, 0.97, 0.9733)) == \
        "round 1: ticket 0.9733 (retrained beside the next rounds, mask 0.360)"


def test_a_collapsed_round_is_flagged_in_one_line_with_its_ticket():
    rows = [vars(_record(0, 0.9833, 0.9833)), vars(_record(3, 0.9611, 0.9889)), vars(_record(4, 0.2444, 0.9889))]
    (note,) = collapse_notes(rows)
    assert note.startswith("round 4: the round's own model reached only 0.2444 (dense 0.9833)")
    assert "30 iterations on 257 samples" in note and "reached 0.9889" in note and "CEP (951" in note
    assert collapse_notes(rows[:2]) == []  # 2 points below the dense model is no collapse


def test_collapse_is_judged_against_the_dense_model_of_the_same_run():
    def run(method, seed, dense, fourth):
        return [dict(vars(_record(0, dense, dense)), method=method, seed=seed),
                dict(vars(_record(4, fourth, NAN)), method=method, seed=seed)]
    rows = run("prac", 0, 0.98, 0.70) + run("prac", 1, 0.85, 0.70) + run("lt", 0, 0.98, 0.97)
    (note,) = collapse_notes(rows)
    assert note.startswith("prac seed 0 round 4:") and "its ticket is the mask retrained on all of D0" in note


def test_the_table_names_the_round_model_and_prints_a_dash_for_no_ticket(capsys):
    records = [_record(0, 0.9833, 0.9833), _record(1, 0.2444, NAN, cep_size=951)]
    print_rounds(_config("prac", "runtime.evaluate_tickets=none"), records)
    out = capsys.readouterr().out
    assert "model acc" in out and "on that set only (not the ticket)" in " ".join(out.split())
    assert "nan" not in out and "–" in out
    assert "round 1: the round's own model reached only 0.2444 (dense 0.9833)" in out


def test_the_round_line_gives_the_sparsity_of_all_prunable_weights():
    resnet_like = _record(1, 0.97, 0.98, sparsity=0.18, linear_sparsity=NAN, output_sparsity=0.0)
    assert round_line(_config("prac"), resnet_like).startswith("round 1: sparsity 0.180 | trained on 257")


def test_the_table_has_a_column_per_layer_type(capsys):
    print_rounds(_config("prac"), [_record(0, 0.98, 0.98, linear_sparsity=NAN)])
    header = next(line for line in capsys.readouterr().out.splitlines() if "sparsity" in line and "round" in line)
    assert [word for word in header.replace("┃", " ").split() if word in ("conv", "linear", "output")] == \
        ["conv", "linear", "output"]
