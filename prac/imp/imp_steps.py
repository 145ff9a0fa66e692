"""The stages of IMP as file-to-file steps: each reads its input artifacts (by reference), computes
with prac/imp/stages.py, writes its outputs atomically and returns references. The in-process engine
(prac/experiment.py) and the Prefect tasks (tasks/) call exactly these."""
from __future__ import annotations

import contextlib
import fcntl
import functools
import json
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from prac.artifacts import PracSet, atomic_write, read_mask, read_prac_set, write_mask, write_prac_set
from prac.artifacts.refs import ArtifactRef, checked_path, file_sha256, make_ref
from prac.code_version import code_version_of
from prac.build_config import check_inputs
from prac.errors import ArtifactError
from prac.imp.context import ExperimentContext
from prac.training.masks import Mask, full_mask
from prac.hardware.placement import to_numpy
from prac.training.round_file import load_round, save_round
from prac.layout.run_paths import recorded, run_paths
from prac.strategies.methods import get_method
from prac.imp.budget import at_prac_budget, check_reference, reference_set, round_budget
from prac.imp.trained_ticket import checked_ticket, write_trained
from prac.imp.stages import (cet_over_d0, early_scores_on_d0, next_training_set, predictions_on_d0, prune, retrain,
                         retrain_stacked, select_cep_stage, train_dense_round, train_sparse_round)
from prac.training.round_types import RoundResult, Snapshot, StateDict

Log = Callable[[str], None] | None


def write_json(path: Path, payload: object) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=float))


def prepare_run(ctx: ExperimentContext, log: Log = None) -> ArtifactRef:
    """config.json and split.parquet (the saved validation split) in the run's folder."""
    check_inputs(ctx.config)
    check_reference(ctx.config)  # the prac run a method at its budget reads (prac.imp.budget)
    paths = run_paths(ctx.config)
    code_version = code_version_of(ctx.config)
    recorded_data = recorded(paths.root, "data_digest")
    data_changed = recorded_data is not None and recorded_data != ctx.data_digest
    if recorded(paths.root, "code_version") != code_version or data_changed:
        (paths.root / "rounds.json").unlink(missing_ok=True)  # another code's or data's results: no longer finished
    if data_changed and log is not None:
        log(f"the {ctx.config.data.dataset} data changed since {paths.root} ran (content digest {recorded_data}, "
            f"now {ctx.data_digest}): its results are computed again")
    write_json(paths.root / "config.json", {"fingerprint": ctx.fingerprint,
                                            "round0_fingerprint": ctx.round0_fingerprint,
                                            "code_version": code_version,
                                            "data_digest": ctx.data_digest,
                                            **ctx.config.model_dump(mode="json")})
    index = np.concatenate([ctx.data.train_index, ctx.data.val_index]).astype(np.int64)
    split = ["train"] * len(ctx.data.train_index) + ["val"] * len(ctx.data.val_index)
    with atomic_write(paths.root / "split.parquet") as tmp:
        pq.write_table(pa.table({"index": index, "split": split}), tmp)
    return make_ref(paths.root / "split.parquet")


def arm_snapshot(ctx: ExperimentContext, result: RoundResult, round_index: int) -> tuple[Snapshot, bool]:
    """(the snapshot this arm uses, whether it stopped early)."""
    return method_snapshot(ctx.config.method, result, round_index)


def method_snapshot(method: str, result: RoundResult, round_index: int) -> tuple[Snapshot, bool]:
    """(the snapshot `method` uses, whether it stopped early). Methods that stop early take the shared
    round 0 as if it had stopped where early stop fired."""
    if round_index == 0:
        if get_method(method).early_stop and result.early is not None:
            return result.early, True
        return result.final, False
    return result.final, result.early is not None


def _round(ctx: ExperimentContext, ref: ArtifactRef | Path) -> RoundResult:
    """A train-round file, its tensors placed on the training device."""
    return ctx.place(load_round(ref if isinstance(ref, Path) else checked_path(ref)))


def _subset(ctx: ExperimentContext, prac_set_ref: ArtifactRef | None) -> np.ndarray | None:
    if ctx.method.selector.trains_on_all or prac_set_ref is None:
        return None
    prac_set = read_prac_set(checked_path(prac_set_ref)).prac_set
    return np.flatnonzero(prac_set.in_prac)  # rows are D0 in order: row number = position in D0


def _mask(ctx: ExperimentContext, mask_ref: ArtifactRef | None) -> Mask:
    """The mask a round starts from, on the training device (all ones before round 0's pruning)."""
    if mask_ref is None:
        return full_mask(ctx.new_model())
    return ctx.place(read_mask(checked_path(mask_ref), expected_fingerprint=ctx.fingerprint).mask)


def round0_file(ctx: ExperimentContext) -> Path:
    return run_paths(ctx.config).shared_round0 / "train.pt"


@contextlib.contextmanager
def round0_held(folder: Path) -> Iterator[None]:
    """An exclusive lock on the shared round 0's folder while one process trains or checks it (released by the
    kernel if the process dies)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def round0_is_current(ctx: ExperimentContext) -> bool:
    """The shared round 0 file is there, written by this code version (round0.json says) and intact."""
    path = round0_file(ctx)
    try:
        recorded = json.loads(path.with_name("round0.json").read_text())
        return (recorded["code_version"] == code_version_of(ctx.config) and recorded["sha256"] == file_sha256(path)
                and recorded["data_digest"] == ctx.data_digest)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def train_round_step(ctx: ExperimentContext, round_index: int, mask_ref: ArtifactRef | None,
                     prac_set_ref: ArtifactRef | None, log: Log = None, fresh: bool = False) -> ArtifactRef:
    """train-round: round 0 (shared, found again if another arm trained it with this code) or m ⊙ θ_rewind
    on the PrAC set; checkpoints every epoch and resumes from the last one. `fresh`: recompute, the
    shared round 0 and the round's checkpoint included."""
    if round_index == 0:
        path = round0_file(ctx)
        checkpoint = path.with_name("train.ckpt")
        with round0_held(path.parent):  # arms started side by side: one trains it, the others find it current
            if fresh:
                checkpoint.unlink(missing_ok=True)
            if fresh or not round0_is_current(ctx):
                if path.exists() and log is not None and not fresh:
                    log(f"{path} was written by other code or from other data, or is damaged: round 0 is trained "
                        f"again")
                result = train_dense_round(ctx, log, checkpoint_path=checkpoint)
                save_round(path, result)
                write_json(path.with_name("round0.json"), {"code_version": code_version_of(ctx.config),
                                                           "data_digest": ctx.data_digest,
                                                           "sha256": file_sha256(path)})
                checkpoint.unlink(missing_ok=True)  # the result file holds what later stages need
            return make_ref(path)
    path = run_paths(ctx.config).round(round_index) / "train.pt"
    rewind_state = _round(ctx, round0_file(ctx)).rewind_state
    checkpoint = path.with_name("train.ckpt")
    if fresh:
        checkpoint.unlink(missing_ok=True)
    budget = round_budget(ctx.config, round_index).epochs if at_prac_budget(ctx.config) else None
    result = train_sparse_round(ctx, rewind_state, _mask(ctx, mask_ref), _subset(ctx, prac_set_ref), log,
                                checkpoint_path=checkpoint, budget_epochs=budget)
    save_round(path, result)
    checkpoint.unlink(missing_ok=True)
    return make_ref(path)


def select_cet_step(ctx: ExperimentContext, round_index: int, train_ref: ArtifactRef,
                    prac_set_ref: ArtifactRef | None) -> ArtifactRef:
    """select-CET: forgetting events and CET over D0, as a PrAC-set file without CEP (cet.parquet)."""
    snap, _ = arm_snapshot(ctx, load_round(checked_path(train_ref)), round_index)  # forget_events: numpy
    subset = _subset(ctx, prac_set_ref) if round_index > 0 else None
    in_cet, events = cet_over_d0(ctx, snap.forget_events, subset)
    trained = np.zeros(len(in_cet), dtype=bool)
    trained[np.arange(len(in_cet)) if subset is None else subset] = True
    path = run_paths(ctx.config).round(round_index) / "cet.parquet"
    write_prac_set(path, _prac_set(ctx, trained, events, in_cet, np.zeros_like(in_cet), in_cet),
                   fingerprint=ctx.fingerprint, round=round_index)
    return make_ref(path)


def _prac_set(ctx: ExperimentContext, trained, events, in_cet, in_cep, in_prac) -> PracSet:
    return PracSet(index=ctx.data.train_index.astype(np.int64),
                   label=to_numpy(ctx.data.train.labels).astype(np.int64),
                   trained=trained, forget_events=events.astype(np.int32), in_cet=in_cet, in_cep=in_cep,
                   in_prac=in_prac)


def prune_step(ctx: ExperimentContext, round_index: int, train_ref: ArtifactRef,
               mask_ref: ArtifactRef | None, prac_set_ref: ArtifactRef | None) -> ArtifactRef:
    """prune: the next mask from this round's last (or early-stopped) weights (and, for criteria that score
    on data, a batch of what the round trained on: `prac_set_ref`)."""
    snap, _ = arm_snapshot(ctx, _round(ctx, train_ref), round_index)

    def trained_on() -> np.ndarray | None:  # read only by a criterion that scores on data
        return _subset(ctx, prac_set_ref) if round_index > 0 else None

    new_mask = prune(ctx, snap.last_state, _mask(ctx, mask_ref), round_index, trained_on)
    path = run_paths(ctx.config).round(round_index) / "mask.parquet"
    write_mask(path, new_mask, fingerprint=ctx.fingerprint, round=round_index)
    return make_ref(path)


def dense_predictions_step(ctx: ExperimentContext, round0_ref: ArtifactRef) -> ArtifactRef:
    """The dense reference of CEP: predictions on D0 of round 0's best model (as this arm sees it); for
    selectors with an early_score (EL2N, SVP's proxy entropy) also that score of each sample (a column of
    its name) under the dense model early in training."""
    result = _round(ctx, round0_ref)
    snap, _ = arm_snapshot(ctx, result, 0)
    columns = {"prediction": predictions_on_d0(ctx, snap.best_state).astype(np.int64)}
    if ctx.method.needs_early_scores:
        columns[ctx.method.selector.early_score] = early_scores_on_d0(ctx, early_state(ctx, result))
    path = run_paths(ctx.config).root / "dense_predictions.parquet"
    with atomic_write(path) as tmp:
        pq.write_table(pa.table(columns), tmp)
    return make_ref(path)


def early_state(ctx: ExperimentContext, round0: RoundResult):
    """The dense model early in training that early scores (EL2N, SVP's proxy) are taken with: θ_rewind when the rewind point is past
    initialisation (k ≥ 1), else where round 0's early stop fired, else round 0's end."""
    if ctx.config.prune.rewind_epoch >= 1:
        return round0.rewind_state
    return (round0.early or round0.final).last_state


def select_cep_step(ctx: ExperimentContext, round_index: int, train_ref: ArtifactRef, cet_ref: ArtifactRef,
                    dense_ref: ArtifactRef | None, log: Log = None) -> ArtifactRef:
    """select-CEP and the next round's training set (column in_prac) by the method's rule: prac's is
    CET ∪ CEP; lt's all of D0 (prac.strategies.methods)."""
    cet = read_prac_set(checked_path(cet_ref), expected_fingerprint=ctx.fingerprint).prac_set
    in_cep = np.zeros_like(cet.in_cet)
    dense = pq.read_table(checked_path(dense_ref)) if dense_ref is not None else None
    @functools.cache
    def sparse_best() -> StateDict:  # read only if CEP or the selector needs it
        return arm_snapshot(ctx, _round(ctx, train_ref), round_index)[0].best_state

    if ctx.method.uses_cep(ctx.config) and round_index >= 1 and dense is not None:
        in_cep = select_cep_stage(ctx, dense.column("prediction").to_numpy(), sparse_best())
    score = ctx.method.selector.early_score
    early_scores = dense.column(score).to_numpy() if dense is not None and score in dense.column_names else None
    budget = {}
    if at_prac_budget(ctx.config):
        budget = {"budget_size": round_budget(ctx.config, round_index).next_samples,
                  "budget_set": lambda: reference_set(ctx.config, round_index, ctx.data.train_index.astype(np.int64))}
    in_prac = next_training_set(ctx, round_index, cet.in_cet, in_cep, early_scores, sparse_best, **budget)
    if not in_prac.any():
        if log:
            log(f"round {round_index}: the PrAC set is empty; the next round trains on this round's set again")
        in_prac = cet.trained.copy()
    path = run_paths(ctx.config).round(round_index) / "prac_set.parquet"
    write_prac_set(path, _prac_set(ctx, cet.trained, cet.forget_events, cet.in_cet, in_cep, in_prac),
                   fingerprint=ctx.fingerprint, round=round_index)
    return make_ref(path)


def retrain_step(ctx: ExperimentContext, round_index: int, mask_ref: ArtifactRef, log: Log = None,
                 fresh: bool = False, stack_with: dict[int, ArtifactRef] | None = None,
                 say: Log = None) -> ArtifactRef:
    """retrain (ticket evaluation) of this round's mask; ticket.json holds its figures. `fresh`: from the
    start, its checkpoint set aside. `stack_with` (prac.imp.retrain_queue): other rounds' masks to retrain with
    this one as a stack; their ticket.json files are written too, stamped with what they are of, and their own
    retrain steps then find them (`stacked_ticket`). `say`: the stack's lines (K, an out-of-memory fallback)."""
    folder = run_paths(ctx.config).round(round_index)
    if not fresh and (ref := stacked_ticket(ctx, round_index, mask_ref)) is not None:
        return ref  # trained by the stack of an earlier round's retrain step
    rewind_state = _round(ctx, round0_file(ctx)).rewind_state
    checkpoint = folder / "retrain.ckpt"
    if fresh:
        checkpoint.unlink(missing_ok=True)
    if not fresh and stack_with:
        masks = {round_index: mask_ref, **{r: ref for r, ref in stack_with.items()
                                           if stacked_ticket(ctx, r, ref) is None}}
        return retrain_stack(ctx, round_index, masks, rewind_state, log, say)
    mask = _mask(ctx, mask_ref)
    result = retrain(ctx, mask, rewind_state, log, checkpoint_path=checkpoint)
    ref = write_ticket(folder / "ticket.json", result.final, mask, source="retrain")
    checkpoint.unlink(missing_ok=True)
    return ref


def retrain_stack(ctx: ExperimentContext, round_index: int, mask_refs: dict[int, ArtifactRef],
                  rewind_state: StateDict, log: Log, say: Log) -> ArtifactRef:
    """The rounds' retrains as stacks (prac.imp.stages.retrain_stacked), each ticket.json stamped; round_index's ref."""
    paths = run_paths(ctx.config)
    checkpoints = {r: paths.round(r) / "retrain.ckpt" for r in mask_refs}
    masks = {r: _mask(ctx, ref) for r, ref in mask_refs.items()}
    results = retrain_stacked(ctx, masks, rewind_state, checkpoints, log, say)
    refs = {r: write_ticket(paths.round(r) / "ticket.json", result.final, masks[r], source="retrain",
                            stack=_stack_stamp(ctx, mask_refs[r], sorted(mask_refs)))
            for r, result in results.items()}
    for checkpoint in checkpoints.values():  # only once every ticket is written: a kill before resumes them all
        checkpoint.unlink(missing_ok=True)
    return refs[round_index]


def _stack_stamp(ctx: ExperimentContext, mask_ref: ArtifactRef, rounds: list[int]) -> dict:
    """What a stacked ticket is of: the mask, this code, this data, this config; and the rounds it trained with."""
    return {"mask_sha256": mask_ref["sha256"], "code_version": code_version_of(ctx.config),
            "data_digest": ctx.data_digest, "fingerprint": ctx.fingerprint, "rounds": rounds}


def stacked_ticket(ctx: ExperimentContext, round_index: int, mask_ref: ArtifactRef) -> ArtifactRef | None:
    """The round's ticket.json when a stack wrote it of this mask, by this code, from this data, its trained weights
    intact beside it; else None."""
    path = run_paths(ctx.config).round(round_index) / "ticket.json"
    try:
        stamp = json.loads(path.read_text()).get("stack")
    except (OSError, ValueError, AttributeError):
        return None
    expected = _stack_stamp(ctx, mask_ref, [])
    if not isinstance(stamp, dict) or any(stamp.get(k) != v for k, v in expected.items() if k != "rounds"):
        return None
    ref = make_ref(path)
    try:
        checked_ticket(ref)
    except ArtifactError:
        return None  # its weights lost or damaged: retrained
    return ref


def write_ticket(path: Path, snap: Snapshot, mask: Mask, source: str, stack: dict | None = None) -> ArtifactRef:
    """ticket.json, once the ticket's trained weights (`snap`'s best-validation state, under `mask`) are on disk
    beside it (prac.imp.trained_ticket): it records their file and checksum."""
    trained = write_trained(path.parent, snap.best_state, mask)
    write_json(path, {"ticket_test_acc": snap.test_acc, "ticket_best_val_acc": snap.best_val_acc,
                      "ticket_iterations": snap.iterations, "source": source, "trained": trained,
                      **({"stack": stack} if stack else {})})
    return make_ref(path)


def ticket_from_next_round_step(ctx: ExperimentContext, round_index: int, next_train_ref: ArtifactRef,
                                mask_ref: ArtifactRef) -> ArtifactRef:
    """lt and random: training round r+1 is the retrain of mask r (same weights, data, schedule, seed); its
    best-validation weights are round r's trained ticket."""
    result = load_round(checked_path(next_train_ref))
    mask = read_mask(checked_path(mask_ref), expected_fingerprint=ctx.fingerprint).mask
    path = run_paths(ctx.config).round(round_index) / "ticket.json"
    return write_ticket(path, result.final, mask, source=f"round {round_index + 1} training")
