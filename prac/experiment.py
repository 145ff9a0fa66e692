"""One experiment (preset × method × seed) run in-process: IMP rounds over the stages, writing each
round's mask and PrAC set. The Prefect flow chains the same stages as tasks."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from prac.artifacts import PracSet, atomic_write, write_mask, write_prac_set
from prac.context import ExperimentContext, build_context
from prac.config import ExperimentConfig
from prac.early_stop import MaskDistanceEarlyStop
from prac.masks import Mask, full_mask, sparsity
from prac.round0_cache import load_round0, save_round0
from prac.stages import (cet_over_d0, predictions_on_d0, prune, retrain, select_cep_stage, train_dense_round,
                         train_sparse_round)
from prac.train import RoundResult, Snapshot

Log = Callable[[str], None]


@dataclass
class RoundRecord:
    """One row of the per-round table. `sparsity` is that of the mask this round produced;
    the round trained under `trained_sparsity` (the previous mask)."""

    round: int
    sparsity: float
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
    ticket_test_acc: float  # retrained m ⊙ θ_rewind of this round's mask (nan if not evaluated)
    extra_forward_passes: int  # evaluation and CEP predictions


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    fingerprint: str
    output_dir: Path
    rounds: list[RoundRecord]


def run_dir(config: ExperimentConfig, fingerprint: str) -> Path:
    return Path(config.runtime.output_dir) / config.preset / fingerprint


def round_dir(base: Path, round_index: int) -> Path:
    return base / f"round_{round_index:02d}"


def _write_json(path: Path, payload: object) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=float))


def _write_split(path: Path, ctx: ExperimentContext) -> None:
    index = np.concatenate([ctx.data.train_index, ctx.data.val_index]).astype(np.int64)
    split = ["train"] * len(ctx.data.train_index) + ["val"] * len(ctx.data.val_index)
    table = pa.table({"index": index, "split": split})
    with atomic_write(path) as tmp:
        pq.write_table(table, tmp)


def _shared_round0(ctx: ExperimentContext, log: Log) -> tuple[dict, RoundResult]:
    path = Path(ctx.config.runtime.output_dir) / ctx.config.preset / f"round0-{ctx.round0_fingerprint}" / "round0.pt"
    if path.exists():
        log(f"round 0: reusing the shared dense round {path}")
        return load_round0(path, ctx.device)
    init_state, result = train_dense_round(ctx, _epoch_log(ctx, log, 0))
    save_round0(path, init_state, result)
    return init_state, result


def _epoch_log(ctx: ExperimentContext, log: Log, label: int | str) -> Log | None:
    prefix = f"round {label}" if isinstance(label, int) else label
    return (lambda line: log(f"{prefix}: {line}")) if ctx.config.runtime.verbose else None


def run_experiment(config: ExperimentConfig, log: Log = print) -> ExperimentResult:
    ctx = build_context(config)
    fp = ctx.fingerprint
    base = run_dir(config, fp)
    _write_json(base / "config.json", {"fingerprint": fp, "round0_fingerprint": ctx.round0_fingerprint,
                                       **config.model_dump(mode="json")})
    _write_split(base / "split.parquet", ctx)
    prac_arm = config.method == "prac"
    window = config.prac.early_stop_window
    if prac_arm and config.prac.early_stop and config.train.epochs < MaskDistanceEarlyStop.minimum_epochs(window):
        log(f"note: early stop needs at least {MaskDistanceEarlyStop.minimum_epochs(window)} epochs to fire; "
            f"with {config.train.epochs} epochs it never will")

    _, round0 = _shared_round0(ctx, log)
    rewind_state = round0.rewind_state
    # The prac arm takes round 0 as if it had stopped where early stop fired.
    snap0 = round0.early if (prac_arm and round0.early is not None) else round0.final
    dense_predictions = predictions_on_d0(ctx, snap0.best_state) if prac_arm and config.prac.use_cep else None
    d0_size = len(ctx.data.train)

    mask: Mask = {k: v.cpu() for k, v in full_mask(ctx.new_model(), config.prune.prune_linear).items()}
    subset: np.ndarray | None = None
    records: list[RoundRecord] = []
    next_round_result: RoundResult | None = None
    cumulative = 0
    for r in range(config.prune.rounds):
        if r == 0:
            snap, early_stopped = snap0, snap0 is round0.early and round0.early is not None
        else:
            result = next_round_result or train_sparse_round(ctx, rewind_state, mask, subset, _epoch_log(ctx, log, r))
            snap, early_stopped = result.final, result.early is not None
        trained_size = d0_size if subset is None else len(subset)
        extra = snap.eval_samples + (d0_size if dense_predictions is not None and r == 0 else 0)

        in_cet, events = cet_over_d0(ctx, snap.forget_events, subset)
        new_mask = prune(ctx, snap.last_state, mask, r)
        in_cep = np.zeros(d0_size, dtype=bool)
        if prac_arm and r >= 1 and dense_predictions is not None:
            in_cep = select_cep_stage(ctx, dense_predictions, snap.best_state)
            extra += d0_size
        trained = np.zeros(d0_size, dtype=bool)
        trained[np.arange(d0_size) if subset is None else subset] = True
        in_prac = (in_cet | in_cep) if prac_arm else np.ones(d0_size, dtype=bool)
        if not in_prac.any():
            log(f"round {r}: the PrAC set is empty; the next round trains on this round's set again")
            in_prac = trained.copy()

        out = round_dir(base, r)
        write_mask(out / "mask.parquet", new_mask, fingerprint=fp, round=r)
        write_prac_set(out / "prac_set.parquet", PracSet(
            index=ctx.data.train_index.astype(np.int64), label=ctx.data.train.labels.cpu().numpy().astype(np.int64),
            trained=trained, forget_events=events, in_cet=in_cet, in_cep=in_cep, in_prac=in_prac,
        ), fingerprint=fp, round=r)

        # Ticket evaluation: for lt and random, training round r+1 *is* the retrain of this mask.
        next_round_result = None
        ticket = float("nan")
        last = r == config.prune.rounds - 1
        wanted = config.runtime.evaluate_tickets == "all" or (config.runtime.evaluate_tickets == "last" and last)
        if not prac_arm and not last:
            next_round_result = train_sparse_round(ctx, rewind_state, new_mask, None, _epoch_log(ctx, log, r + 1))
            ticket = next_round_result.final.test_acc if wanted else ticket
        elif wanted:
            ticket = retrain(ctx, new_mask, rewind_state, _epoch_log(ctx, log, f"retrain of mask {r}")).final.test_acc

        cumulative += snap.iterations
        record = RoundRecord(
            round=r, sparsity=sparsity(new_mask), trained_sparsity=sparsity(mask), train_set_size=trained_size,
            prac_set_size=int(in_prac.sum()), prac_set_fraction=float(in_prac.mean()),
            cet_size=int(in_cet.sum()), cep_size=int(in_cep.sum()), epochs_run=snap.epochs_run,
            early_stopped=bool(early_stopped), train_iterations=snap.iterations, cumulative_iterations=cumulative,
            best_val_acc=snap.best_val_acc, test_acc=snap.test_acc, ticket_test_acc=ticket,
            extra_forward_passes=extra,
        )
        records.append(record)
        _write_json(out / "round.json", asdict(record))
        log(_round_line(record))
        mask = new_mask
        subset = None if not prac_arm else np.flatnonzero(in_prac)

    _write_json(base / "rounds.json", [asdict(r) for r in records])
    return ExperimentResult(config, fp, base, records)


def _round_line(r: RoundRecord) -> str:
    return (f"round {r.round}: sparsity {r.sparsity:.3f} | trained on {r.train_set_size} for {r.epochs_run} epochs"
            f"{' (early stop)' if r.early_stopped else ''}, {r.train_iterations} iterations | test {r.test_acc:.4f}"
            f" | ticket {r.ticket_test_acc:.4f} | next set {r.prac_set_size} (CET {r.cet_size}, CEP {r.cep_size})")
