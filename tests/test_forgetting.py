"""Forgetting events, the correctness record, and the selection of CET, CEP and the PrAC set."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from prac.training.forgetting import NEVER_LEARNED, CorrectnessRecord, forget_events
from prac.training.selection import prac_union, select_cep, select_cet


def events_reference(history: np.ndarray) -> np.ndarray:
    """Independent count: loop over epochs, an event is correct at t-1 and incorrect at t."""
    epochs, samples = history.shape
    out = np.zeros(samples, dtype=np.int64)
    for s in range(samples):
        if not history[:, s].any():
            out[s] = -1
            continue
        for t in range(1, epochs):
            if history[t - 1, s] and not history[t, s]:
                out[s] += 1
    return out


def test_forget_events_counts_correct_to_incorrect_only():
    rows = {  # per sample, correctness over 6 epochs
        "always right": [1, 1, 1, 1, 1, 1],
        "learned late": [0, 0, 0, 1, 1, 1],  # incorrect->correct is not an event
        "forgot once": [1, 1, 0, 0, 0, 0],
        "forgot at the end": [0, 0, 0, 0, 1, 0],
        "flip-flop": [1, 0, 1, 0, 1, 0],
        "relearned": [0, 1, 0, 1, 1, 1],
        "never learned": [0, 0, 0, 0, 0, 0],
    }
    expected = [0, 0, 1, 1, 3, 1, NEVER_LEARNED]
    history = torch.tensor(list(rows.values()), dtype=torch.bool).T  # (epochs, samples)
    events = forget_events(history)
    assert events.dtype == np.int32
    assert events.tolist() == expected
    assert NEVER_LEARNED == -1


def test_forget_events_matches_a_loop_on_random_histories():
    rng = np.random.default_rng(0)
    history = rng.random((9, 300)) < 0.6
    history[:, :5] = False  # some never learned
    np.testing.assert_array_equal(forget_events(torch.from_numpy(history)), events_reference(history))


def test_forget_events_with_one_or_no_epochs():
    one = torch.tensor([[True, False, True]])
    assert forget_events(one).tolist() == [0, NEVER_LEARNED, 0]
    none = torch.zeros((0, 4), dtype=torch.bool)
    assert forget_events(none).tolist() == [NEVER_LEARNED] * 4


def test_record_scatters_by_position_and_counts_only_epochs_run():
    record = CorrectnessRecord(epochs=4, samples=6, device="cpu")
    # Epoch 0: the batches arrive in a shuffled order.
    record.record(0, torch.tensor([4, 1, 5]), torch.tensor([True, True, False]))
    record.record(0, torch.tensor([0, 3, 2]), torch.tensor([True, False, True]))
    assert record.correct[0].tolist() == [True, True, True, False, True, False]
    # Epoch 1: sample 4 and sample 0 become incorrect, 3 correct.
    record.record(1, torch.tensor([2, 3, 0, 1, 5, 4]), torch.tensor([True, True, False, True, False, False]))
    assert record.correct[1].tolist() == [False, True, True, True, False, False]
    assert record.correct[2:].sum() == 0  # other epochs untouched
    assert record.forget_events(2).tolist() == [1, 0, 0, 0, 1, NEVER_LEARNED]
    # Epochs not run yet do not count as "incorrect": no spurious events.
    assert record.forget_events(2).tolist() != record.forget_events(4).tolist()
    assert record.forget_events(1).tolist() == [0, 0, 0, NEVER_LEARNED, 0, NEVER_LEARNED]


def test_batches_kept_then_written_once_per_epoch_equal_a_scatter_per_batch():
    # The training loop keeps each batch's predictions (record_batch) and writes the epoch at its end
    # (end_epoch): the row must be what a scatter of (argmax == label) per batch would have written.
    g = torch.Generator().manual_seed(0)
    samples, batch, classes = 10, 4, 3  # batches of 4, 4, 2
    order = torch.randperm(samples, generator=g)
    labels = torch.randint(0, classes, (samples,), generator=g)
    logits = torch.randn(samples, classes, generator=g, requires_grad=True)  # in visiting order
    kept, direct = CorrectnessRecord(2, samples, "cpu"), CorrectnessRecord(2, samples, "cpu")
    for start in range(0, samples, batch):
        stop = min(start + batch, samples)
        kept.record_batch(torch.arange(start, stop), logits[start:stop])
        direct.record(1, order[start:stop], logits[start:stop].argmax(dim=1) == labels[order[start:stop]])
    kept.end_epoch(1, order, labels[order])
    assert torch.equal(kept.correct, direct.correct)
    assert kept.correct[1].any() and not kept.correct[1].all() and not kept.correct[0].any()


def test_record_state_dict_round_trip():
    record = CorrectnessRecord(epochs=3, samples=4, device="cpu")
    record.record(0, torch.tensor([0, 2]), torch.tensor([True, True]))
    record.record(1, torch.tensor([0, 1]), torch.tensor([False, True]))
    other = CorrectnessRecord(epochs=3, samples=4, device="cpu")
    other.load_state_dict(record.state_dict())
    assert torch.equal(other.correct, record.correct)
    assert other.forget_events(2).tolist() == record.forget_events(2).tolist() == [1, 0, 1, NEVER_LEARNED]


def test_select_cet_takes_never_learned_and_more_events_than_the_threshold():
    events = np.array([0, 1, 2, 3, NEVER_LEARNED, 0], dtype=np.int32)
    assert select_cet(events, 0).tolist() == [False, True, True, True, True, False]
    assert select_cet(events, 1).tolist() == [False, False, True, True, True, False]
    assert select_cet(events, 5).tolist() == [False, False, False, False, True, False]
    assert select_cet(events, 0).dtype == bool


def test_select_cep_is_the_disagreement():
    dense = np.array([0, 1, 2, 3, 4, 5])
    sparse = np.array([0, 2, 2, 3, 1, 5])
    assert select_cep(dense, sparse).tolist() == [False, True, False, False, True, False]
    assert not select_cep(dense, dense).any()
    with pytest.raises(ValueError):
        select_cep(dense, sparse[:5])


def test_prac_union():
    cet = np.array([True, False, False, True])
    cep = np.array([False, False, True, True])
    assert prac_union(cet, cep).tolist() == [True, False, True, True]


def test_cet_from_a_record_end_to_end():
    # Samples: 0 always right, 1 forgotten once, 2 never learned, 3 learned late.
    record = CorrectnessRecord(epochs=3, samples=4, device="cpu")
    positions = torch.arange(4)
    for epoch, correct in enumerate([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 0, 1]]):
        record.record(epoch, positions, torch.tensor(correct, dtype=torch.bool))
    assert select_cet(record.forget_events(3), 0).tolist() == [False, True, True, False]
