"""One row of the per-round table, assembled from a round's artifact files."""
from __future__ import annotations

import json
from dataclasses import dataclass

from prac.artifacts import read_mask, read_prac_set
from prac.artifacts.refs import ArtifactRef, checked_path
from prac.imp.context import ExperimentContext
from prac.imp.imp_steps import arm_snapshot
from prac.training.masks import type_sparsities
from prac.training.round_file import load_round


@dataclass
class RoundRecord:
    """`sparsity` is that of the mask this round produced, over all prunable weights (every conv and linear
    weight, the types a config leaves dense included); `conv_sparsity`, `linear_sparsity` (hidden linear layers)
    and `output_sparsity` (the last linear layer) that of each layer type's weights (nan: the network has none).
    The round trained under `trained_sparsity` (the previous mask)."""

    round: int
    sparsity: float
    conv_sparsity: float
    linear_sparsity: float
    output_sparsity: float
    trained_sparsity: float
    train_set_size: int  # |D| this round trained on
    prac_set_size: int  # |D| of the next round
    prac_set_fraction: float
    cet_size: int
    cep_size: int
    epochs_run: int
    early_stopped: bool
    train_iterations: int
    cumulative_iterations: int
    best_val_acc: float
    test_acc: float  # the best-validation model of this round's training
    ticket_test_acc: float  # m ⊙ θ_rewind of this round's mask retrained on D0 (nan if not evaluated)
    extra_forward_passes: int  # validation/test evaluation and CEP predictions

    def metrics(self) -> dict[str, float]:
        """The per-round MLflow metrics (step = round)."""
        return {k: float(v) for k, v in vars(self).items() if k != "round"}


def ticket_accuracy(ticket_ref: ArtifactRef | None) -> float:
    if ticket_ref is None:
        return float("nan")
    return float(json.loads(checked_path(ticket_ref).read_text())["ticket_test_acc"])


def round_record(ctx: ExperimentContext, round_index: int, train_ref: ArtifactRef, mask_ref: ArtifactRef,
                 previous_sparsity: float, prac_set_ref: ArtifactRef, ticket_ref: ArtifactRef | None,
                 cumulative_before: int) -> RoundRecord:
    snap, early_stopped = arm_snapshot(ctx, load_round(checked_path(train_ref)), round_index)
    prac_set = read_prac_set(checked_path(prac_set_ref)).prac_set
    mask_file = read_mask(checked_path(mask_ref))
    by_type = type_sparsities(mask_file.mask, ctx.layer_types())
    d0 = len(prac_set.index)
    # CEP needs the dense predictions once (round 0) and this round's predictions (rounds ≥ 1); early scores
    # (EL2N, SVP's proxy) one pass of the early dense model (round 0); a selector that ranks by the round's own
    # model (Entropy) one pass a round.
    selector = ctx.method.selector
    cep_passes = d0 if ctx.method.uses_cep(ctx.config) else 0
    cep_passes += d0 if ctx.method.needs_early_scores and round_index == 0 else 0
    cep_passes += d0 if selector.reads_sparse_model else 0
    return RoundRecord(
        round=round_index, sparsity=mask_file.sparsity, conv_sparsity=by_type["conv"],
        linear_sparsity=by_type["linear"], output_sparsity=by_type["output"], trained_sparsity=previous_sparsity,
        train_set_size=int(prac_set.trained.sum()), prac_set_size=int(prac_set.in_prac.sum()),
        prac_set_fraction=float(prac_set.in_prac.mean()), cet_size=int(prac_set.in_cet.sum()),
        cep_size=int(prac_set.in_cep.sum()), epochs_run=snap.epochs_run, early_stopped=early_stopped,
        train_iterations=snap.iterations, cumulative_iterations=cumulative_before + snap.iterations,
        best_val_acc=snap.best_val_acc, test_acc=snap.test_acc, ticket_test_acc=ticket_accuracy(ticket_ref),
        extra_forward_passes=snap.eval_samples + cep_passes,
    )
