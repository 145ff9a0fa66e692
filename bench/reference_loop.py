"""A baseline arm written the way the reference implementation's training loop is: `train()` of
`main_PrAC_imp.py` in VITA-Group/PrAC-LTH (the paper's code), on our in-memory data.

What that loop does per step, and this arm reproduces:
- No DataLoader. `setup_model_dataset(args, if_train_set=True)` (`utils/setup.py`) hands `train()` the bare
  torchvision dataset from `cifar10_dataloaders(dataset=True)` (`dataset.py`): each sample a PIL image
  through `RandomCrop(32, padding=4)`, `RandomHorizontalFlip`, `ToTensor` and no `Normalize` (the model
  normalises on the device: `model.normalize = NormalizeByChannelMeanStd`, called first in
  `models/resnets.py` `forward`). Here: `PILImages` with `baseline_transform` less its `Normalize`, and
  `(x - mean) / std` on the device before the model.
- The PrAC set is `sequence`, indices into the full training set; each epoch `train()` permutes it with
  `np.random.permutation` and builds every batch in the main process: `trainset.__getitem__(ind)[0]` per
  index, `torch.stack`, targets by `torch.LongTensor(np.array(trainset.targets)[batch_inds].tolist())`
  (the whole target list turned into an array every batch), then a blocking `.cuda()` of both.
  Here `sequence` is every training image, the first round's PrAC set.
- Forward, `nn.CrossEntropyLoss`, `zero_grad`, `backward`, SGD step (lr 0.1, momentum 0.9, weight decay
  1e-4, `MultiStepLR` gamma 0.1); masks through `torch.nn.utils.prune` (`prune_model_custom` in
  `utils/pruner.py`: `prune.CustomFromMask.apply`, re-parametrised every forward).
- Forgetting statistics per sample: `acc = (argmax(output) == target)`, then
  `all_acc_train[index, 0] = acc[j]` for each sample into a float64 numpy array as long as the whole
  training set (`-np.ones`, fresh each epoch): one tensor-to-Python conversion per sample, a host sync
  each on a GPU. The epoch's array is kept (`example_wise_prediction.append`), as for `sorted_examples`.
- Meters: top-1 through `accuracy()` (`topk`), then `losses.update(loss.item())` and
  `top1.update(prec1.item())` (`AverageMeter`): two more host syncs per batch.

Left out, because they happen per epoch or per round rather than per step, or touch the disk (the other
arms do none of them either): the `print` every 50 batches, `validate()` on the validation and test
loaders, the early-bird mask (`return_current_mask`, a global L1 prune of the Conv2d weights) and its
Hamming distance, `save_checkpoint`, the matplotlib plot, and the round's PrAC selection
(`sorted_examples`, `prune_aware_example`). LR warm-up (`warmup_lr`) is off by default (`--warmup 0`).
`setup_seed`'s `cudnn.deterministic = True` is not set: it is global and would slow the other arms in
the same process. The mask is the benchmark's (`benchmark_mask`, Linear layers too for LeNet-300-100)
where the reference masks Conv2d weights only, so every arm trains the same sparse model.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import transforms

from common import BATCH, GAMMA, WARMUP_BATCHES, PILImages, Workload, baseline_start, baseline_transform, timed
from prac.data.device_data import DeviceData
from prac.training.evaluate import accuracy


class _Meter:
    """The reference's `AverageMeter`: last value, running sum and count, average."""

    def __init__(self) -> None:
        self.val = self.sum = self.count = self.avg = 0.0

    def update(self, val: float, n: int = 1) -> None:
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def _top1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The reference's `accuracy(output, target, topk=(1,))[0]`: top-1 precision in percent, a tensor."""
    _, pred = output.topk(1, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    return correct[:1].view(-1).float().sum(0).mul_(100.0 / target.size(0))


class ReferenceLoop:
    """The PrAC-LTH `train()` loop (main process, no workers) on the same model, initial weights and mask
    as FastPath and Baseline."""

    def __init__(self, workload: Workload, data: DeviceData, seed: int = 0):
        self.workload, self.data = workload, data
        self.device = data.train.images.device
        self.model, self.mask, self.optimizer = baseline_start(workload, data, seed)
        # the reference's train transform has no Normalize: NormalizeByChannelMeanStd runs in the model
        no_normalize = [t for t in baseline_transform(data).transforms if not isinstance(t, transforms.Normalize)]
        self.trainset = PILImages(data.train, transforms.Compose(no_normalize))
        self.mean, self.std = data.mean.to(self.device), data.std.to(self.device)
        self.sequence = np.arange(len(data.train))  # the PrAC set: indices into the training set
        self.images = len(self.sequence)
        self.example_wise_prediction: list[np.ndarray] = []  # per epoch of train_epochs, as the reference keeps

    def _epoch(self, seed: int, limit: int | None = None) -> np.ndarray:
        """One pass of the reference's `train()` over `sequence` (or its first `limit` batches); returns the
        epoch's per-sample correctness record (-1 for samples not seen)."""
        self.model.train()
        losses, top1 = _Meter(), _Meter()
        all_acc_train = -np.ones((len(self.trainset), 1))
        # np.random.permutation as the reference, from a seeded RandomState instead of the global one
        permutation = self.sequence[np.random.RandomState(seed).permutation(np.arange(len(self.sequence)))]
        torch.manual_seed(seed)  # the transforms' draws
        for batch_idx, start in enumerate(range(0, len(self.sequence), BATCH)):
            if limit is not None and batch_idx >= limit:
                break
            batch_inds = permutation[start:start + BATCH]
            image = torch.stack([self.trainset.__getitem__(ind)[0] for ind in batch_inds])
            target = torch.LongTensor(np.array(self.trainset.targets)[batch_inds].tolist())
            image, target = image.to(self.device), target.to(self.device)  # `.cuda()`: no pinning, blocking

            output_clean = self.model((image - self.mean) / self.std)  # NormalizeByChannelMeanStd, then the net
            loss = F.cross_entropy(output_clean, target)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

            predicted = torch.argmax(output_clean.data, 1)
            acc = predicted == target
            for j, index in enumerate(batch_inds):
                all_acc_train[index, 0] = acc[j]  # float(tensor) per sample: a host sync each on a GPU
            output, loss = output_clean.float(), loss.float()
            prec1 = _top1(output.data, target)
            losses.update(loss.item(), image.size(0))
            top1.update(prec1.item(), image.size(0))
        return all_acc_train

    def warm_up(self) -> None:
        timed(lambda: self._epoch(1_000_000, WARMUP_BATCHES), self.data)

    def images_per_second(self, repeat: int) -> float:
        return self.images / timed(lambda: self._epoch(repeat), self.data)

    def train_epochs(self, epochs: int, seed: int, milestones: tuple[int, ...] = ()) -> None:
        """`epochs` epochs with the LR multiplied by GAMMA at each milestone epoch (the reference's
        MultiStepLR), each epoch's correctness record kept."""
        for epoch in range(epochs):
            lr = self.workload.lr * GAMMA ** sum(1 for m in milestones if epoch >= m)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.example_wise_prediction.append(self._epoch(seed * 1000 + epoch))

    def test_accuracy(self) -> float:
        return accuracy(self.model, self.data.test, self.data, channels_last=False)
