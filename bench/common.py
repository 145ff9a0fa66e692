"""What the benchmarks share: threads and machine notes, interleaved timing, the workloads, our training
path and the baseline written the usual way.

- Our path is `prac.training.train.train_round` itself: each split one uint8 tensor, batches gathered by index,
  crop/flip/normalise on the device, channels_last, masks enforced in place (MaskEnforcer), one scatter
  per batch into the correctness record. Each call trains one epoch and ends with the round's
  evaluation on a one-batch validation and test split (EVAL_SPLIT images), counted in its time.
- The baseline is written the way the reference implementation and most users write it: a torchvision
  `VisionDataset` over the same uint8 images, each sample a PIL image through `RandomCrop(size, padding)`,
  `RandomHorizontalFlip`, `ToTensor`, `Normalize`; a `DataLoader(batch_size=128, shuffle=True,
  num_workers=2)`; masks through `torch.nn.utils.prune.custom_from_mask` (re-parametrised every forward);
  SGD momentum 0.9, weight decay 1e-4. It records no forgetting statistics and evaluates nothing, so
  the comparison is conservative (our path does both).

Every figure is measured in the calling process, arms interleaved repeat by repeat (order alternating),
medians reported. Scripts put `bench/` on the path themselves (`python bench/x.py`), so they import this
as `common`.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import math
import os
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms
from torchvision.datasets import VisionDataset

from prac.settings.config import TrainConfig
from prac.data import idx_files
from prac.data.cifar import CIFAR10_MEAN, CIFAR10_STD
from prac.data.device_data import DeviceData, DeviceSplit
from prac.data.fashion_mnist import DEFAULT_DIR as FASHION_DIR
from prac.data.registry import DATASETS, load_dataset
from prac.training.evaluate import accuracy
from prac.training.masks import LAYER_TYPES, Mask, full_mask, layer_types, prunable_parameters
from prac.models import build_model
from prac.hardware.placement import to_device
from prac.hardware.precision import autocast_dtype
from prac.training.pruning import PruneRule, magnitude_prune
from prac.training.round_types import RoundSpec
from prac.training.schedule import RoundSchedule
from prac.training.train import train_round

BATCH = 128
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
PRUNED = 0.2  # fraction of the prunable weights the benchmark mask removes (one IMP round)
EVAL_SPLIT = BATCH  # validation/test images train_round evaluates after each epoch: one batch
WARMUP_BATCHES = 3
QUIET_LOAD = 1.0  # 1-minute load average above which the machine is not quiet enough to time


# --- the command line and the machine -------------------------------------------------------------

def parse_args(description: str, add: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="a few batches, one repeat: a smoke test of the benchmark, not a measurement")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                        help="torch.set_num_threads for every arm (default: min(2, cores))")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per arm")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where both paths train")
    if add is not None:
        add(parser)
    args = parser.parse_args()
    if args.quick:
        smoke_fashion_files()
    return args


# The smoke runs' stand-in for Fashion-MNIST: as many images as the largest --quick workload reads (the
# throughput science check: 4,096 training images plus a validation batch; 10,000 test images).
SMOKE_FASHION = (6_000, 10_000)
FASHION_STAND_IN = False  # set when this process trains on them: comparisons of accuracy mean nothing there


def smoke_fashion_files() -> None:
    """A --quick run on a machine without the Debian package dataset-fashion-mnist (and no PRAC_FASHION_DIR)
    trains on learnable 28×28 images written in the real idx format (prac.data.idx_files), read by the real
    loader: the smoke checks that the benchmark runs, not its figures. Its child processes inherit the folder."""
    global FASHION_STAND_IN
    if os.environ.get("PRAC_FASHION_DIR") or FASHION_DIR.is_dir():
        return
    FASHION_STAND_IN = True
    folder = Path(tempfile.mkdtemp(prefix="prac-smoke-fashion-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    idx_files.write_learnable_fashion_mnist(folder, *SMOKE_FASHION)
    os.environ["PRAC_FASHION_DIR"] = str(folder)
    print(f"# no Fashion-MNIST at {FASHION_DIR} (apt-get install dataset-fashion-mnist): this smoke run uses "
          f"generated 28x28 images in its format")


def _machine_busy_seconds() -> float | None:
    """CPU-seconds every process of the machine has spent since boot (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU-seconds of this process (all its threads) and of its reaped children (DataLoader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_STARTED: dict[str, float | None] = {}


def start(args: argparse.Namespace, title: str) -> None:
    """Set the thread count and print what the figures depend on; warn when the machine is busy."""
    _STARTED.update(wall=time.perf_counter(), machine=_machine_busy_seconds(), own=_own_seconds())
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(f"# {title}{' (--quick: smoke run, figures not meaningful)' if args.quick else ''}")
    print(f"torch {torch.__version__}; torch.set_num_threads({args.threads}) -> {torch.get_num_threads()} "
          f"threads; {os.cpu_count()} cores; load average (1 min) {load:.2f} at start; device {describe_device(args.device)}")
    if load > QUIET_LOAD and not args.quick:
        print(f"warning: load average {load:.2f} > {QUIET_LOAD}: another process is busy; with as many torch "
              "threads as cores this slows torch down several times (OpenMP spinning): re-measure when quiet")


def other_processes_note() -> str:
    """How much CPU other processes took while this benchmark ran (they slow torch down several times)."""
    machine = _machine_busy_seconds()
    if machine is None or _STARTED.get("machine") is None:
        return "CPU time of other processes: unknown (no /proc/stat)"
    wall = time.perf_counter() - _STARTED["wall"]
    other = max(0.0, (machine - _STARTED["machine"]) - (_own_seconds() - _STARTED["own"]))
    return (f"CPU time of other processes during the run: {other:,.1f} s over {wall:,.0f} s of wall time "
            f"({other / wall:.0%} of one core on average)")


def finish(failures: Sequence[str], last_line: str) -> int:
    """Print the failures (if any) and then the ratio line, always last; return the exit code."""
    print(other_processes_note())
    for failure in failures:
        print(f"FAILED: {failure}")
    print(last_line)
    return 1 if failures else 0


# --- timing -------------------------------------------------------------------------------------

def interleave(arms: dict[str, Callable[[int], float]], repeats: int) -> dict[str, list[float]]:
    """Call every arm once per repeat (its argument: the repeat's index), the order alternating between
    repeats (A B C, C B A, ...) so a slow drift of the machine hits every arm alike."""
    results: dict[str, list[float]] = {name: [] for name in arms}
    names = list(arms)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            results[name].append(arms[name](r))
    return results


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> str:
    return f"{min(values):,.0f}–{max(values):,.0f}"


def paired_fractions(with_piece: Sequence[float], without: Sequence[float]) -> list[float]:
    """Per repeat, the share of an epoch's time the piece costs: (t_with - t_without) / t_with."""
    return [(a - b) / a for a, b in zip(with_piece, without)]


def timed(fn: Callable[[], object], on: DeviceData | torch.device | str = "cpu") -> float:
    """Seconds `fn` takes, the GPU's queued work included when `on` (a device, or data on one) is a GPU."""
    device = on.train.images.device if isinstance(on, DeviceData) else on
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pastes into BENCHMARKS.md as it is)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


@contextlib.contextmanager
def replaced(owner: object, name: str, value: object) -> Iterator[None]:
    """Temporarily replace `owner.name` (e.g. a method by a no-op) for the 'without' arm of a benchmark."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


# --- data ---------------------------------------------------------------------------------------

def _split(images: np.ndarray, labels: np.ndarray) -> DeviceSplit:
    return DeviceSplit(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64)))


def _device_data(dataset: str, train: DeviceSplit, val: DeviceSplit, test: DeviceSplit,
                 mean: Sequence[float], std: Sequence[float], num_classes: int) -> DeviceData:
    spec = DATASETS[dataset]  # the dataset's own augmentation settings (padding, flip)
    channels = train.images.shape[1]
    return DeviceData(
        train=train, val=val, test=test,
        train_index=np.arange(len(train)), val_index=np.arange(len(val)),
        mean=torch.tensor(mean, dtype=torch.float32).view(1, channels, 1, 1),
        std=torch.tensor(std, dtype=torch.float32).view(1, channels, 1, 1),
        crop_padding=spec.crop_padding, flip=spec.flip, num_classes=num_classes,
        image_shape=tuple(train.images.shape[1:]),
    )


def fashion_data(train_count: int, test_count: int = EVAL_SPLIT) -> DeviceData:
    """Real Fashion-MNIST (the Debian package's files, or those in PRAC_FASHION_DIR): the first `train_count`
    training images, a one-batch validation split from the end of the training set, the first `test_count`
    test images."""
    raw = load_dataset("fashion-mnist", os.environ.get("PRAC_FASHION_DIR"))
    if train_count > len(raw.train_labels) - EVAL_SPLIT:
        raise ValueError(f"at most {len(raw.train_labels) - EVAL_SPLIT} Fashion-MNIST training images")
    return _device_data(
        "fashion-mnist",
        _split(raw.train_images[:train_count], raw.train_labels[:train_count]),
        _split(raw.train_images[-EVAL_SPLIT:], raw.train_labels[-EVAL_SPLIT:]),
        _split(raw.test_images[:test_count], raw.test_labels[:test_count]),
        raw.mean, raw.std, raw.num_classes,
    )


def cifar_shaped_data(train_count: int, seed: int = 0) -> DeviceData:
    """Random uint8 3x32x32 images with 10 random labels: CIFAR-10's shape, statistics and augmentation."""
    rng = np.random.default_rng(seed)
    total = train_count + 2 * EVAL_SPLIT
    images = rng.integers(0, 256, size=(total, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=total)
    parts = [slice(0, train_count), slice(train_count, train_count + EVAL_SPLIT), slice(train_count + EVAL_SPLIT, total)]
    train, val, test = (_split(images[p], labels[p]) for p in parts)
    return _device_data("cifar10", train, val, test, CIFAR10_MEAN, CIFAR10_STD, 10)


# --- workloads ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """A model on its data, as the presets train it: fashion-lenet, fashion-conv, cifar10-resnet20."""

    label: str
    model: str
    data: str  # "fashion" (real Fashion-MNIST) or "cifar" (CIFAR-shaped random images)
    pruned_types: tuple[str, ...]  # the layer types benchmark_mask prunes; the others stay dense, in the mask
    lr: float

    def make_data(self, train_count: int, test_count: int = EVAL_SPLIT, device: torch.device | str = "cpu",
                  precision: str = "auto") -> DeviceData:
        """The workload's data on `device`, with the product's default precision there unless `precision` says
        otherwise (auto: bfloat16 autocast on a GPU and on a CPU with native bfloat16, where measured faster;
        prac.hardware.precision)."""
        data = fashion_data(train_count, test_count) if self.data == "fashion" else cifar_shaped_data(train_count)
        device = torch.device(device)
        return dataclasses.replace(to_device(data, device), autocast=autocast_dtype(precision, device, self.model))


WORKLOADS = {
    "lenet300": Workload("LeNet-300-100, Fashion-MNIST", "lenet300", "fashion", ("linear", "output"), 0.1),
    "conv4": Workload("Conv-4, Fashion-MNIST", "conv4", "fashion", ("conv",), 0.05),
    "resnet20": Workload("ResNet-20, CIFAR-shaped", "resnet20", "cifar", ("conv",), 0.1),
    "conv2": Workload("Conv-2, Fashion-MNIST", "conv2", "fashion", ("conv",), 0.05),  # on request (--models)
}
DEFAULT_MODELS = ("lenet300", "conv4", "resnet20")


def new_model(workload: Workload, data: DeviceData, seed: int = 0) -> nn.Module:
    """The workload's model at its initial weights, on the data's device."""
    channels, height, _ = data.image_shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(workload.model, in_channels=channels, num_classes=data.num_classes, image_size=height)
    return model.to(data.train.images.device)


def benchmark_mask(model: nn.Module, workload: Workload) -> Mask:
    """Magnitude pruning of PRUNED of the workload's pruned layer types at initialisation (one IMP round, global
    within each type)."""
    rule = PruneRule(layer_types(model), {t: PRUNED if t in workload.pruned_types else 0.0 for t in LAYER_TYPES})
    weights = {name: p.detach() for name, p in prunable_parameters(model).items()}
    return magnitude_prune(weights, full_mask(model), rule)


def pruned_fraction(model: nn.Module, mask: Mask) -> float:
    """Fraction of the mask's pruned positions whose effective weight is exactly zero (1.0 when enforced)."""
    modules = dict(model.named_modules())
    zero = total = 0
    for name, keep in mask.items():
        module_name, _, attr = name.rpartition(".")
        weight = getattr(modules[module_name], attr).detach()  # the masked weight under torch prune too
        zero += int((weight[~keep] == 0).sum())
        total += int((~keep).sum())
    return zero / total


GAMMA = 0.1


def schedule(epochs: int, lr: float, milestones: tuple[int, ...] = ()) -> RoundSchedule:
    return RoundSchedule(epochs=epochs, milestones=milestones, warmup_epochs=0, lr=lr, gamma=GAMMA)


class FastPath:
    """Our engine: `prac.training.train.train_round` on a pruned model, the model's weights carried across calls."""

    def __init__(self, workload: Workload, data: DeviceData, subset: np.ndarray | None = None, seed: int = 0):
        self.workload, self.data, self.subset = workload, data, subset
        self.model = new_model(workload, data, seed)
        self.mask = benchmark_mask(self.model, workload)
        self.train = TrainConfig(epochs=1, batch_size=BATCH, lr=workload.lr, momentum=MOMENTUM,
                                 weight_decay=WEIGHT_DECAY)
        self.images = len(data.train) if subset is None else len(subset)

    def train_epochs(self, epochs: int, seed: int, subset: np.ndarray | None = None,
                     milestones: tuple[int, ...] = ()) -> float:
        """Seconds for one train_round of `epochs` epochs (evaluation of the one-batch splits included)."""
        spec = RoundSpec(schedule(epochs, self.workload.lr, milestones), seed=seed, subset=subset)
        return timed(lambda: train_round(self.model, self.mask, self.data, self.train, spec), self.data)

    def warm_up(self) -> None:
        self.train_epochs(1, seed=1_000_000, subset=np.arange(min(WARMUP_BATCHES * BATCH, len(self.data.train))))

    def images_per_second(self, repeat: int) -> float:
        return self.images / self.train_epochs(1, seed=repeat, subset=self.subset)

    def test_accuracy(self) -> float:
        return accuracy(self.model, self.data.test, self.data, self.train.channels_last)


class PILImages(VisionDataset):
    """The usual in-memory torchvision dataset (as torchvision's FashionMNIST and CIFAR10 are): uint8 arrays,
    each sample made a PIL image and passed through `transform`."""

    def __init__(self, split: DeviceSplit, transform: Callable) -> None:
        super().__init__(root=None, transform=transform)
        images = split.images.cpu().numpy()
        # torchvision keeps grey images as (N, H, W) and colour ones as (N, H, W, C)
        self.images = images[:, 0] if images.shape[1] == 1 else np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        self.targets = split.labels.cpu().tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), self.targets[index]


def baseline_transform(data: DeviceData) -> transforms.Compose:
    size = data.image_shape[1]
    steps: list[Callable] = []
    if data.crop_padding:
        steps.append(transforms.RandomCrop(size, padding=data.crop_padding))
    if data.flip:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(data.mean.flatten().tolist(), data.std.flatten().tolist())]
    return transforms.Compose(steps)


def prune_with_torch(model: nn.Module, mask: Mask) -> None:
    """The masks as torch.nn.utils.prune re-parametrisation: weight = weight_orig * weight_mask every forward."""
    modules = dict(model.named_modules())
    for name, keep in mask.items():
        module_name, _, attr = name.rpartition(".")
        prune.custom_from_mask(modules[module_name], attr, keep)


def baseline_start(workload: Workload, data: DeviceData, seed: int) -> tuple[nn.Module, Mask, torch.optim.SGD]:
    """A baseline's start: the model at FastPath's initial weights, the same mask as torch.nn.utils.prune
    re-parametrisation, plain SGD."""
    model = new_model(workload, data, seed)
    mask = benchmark_mask(model, workload)
    prune_with_torch(model, mask)
    return model, mask, torch.optim.SGD(model.parameters(), lr=workload.lr, momentum=MOMENTUM,
                                        weight_decay=WEIGHT_DECAY)


class Baseline:
    """The DataLoader/PIL/torch-prune loop on the same model, initial weights and mask as FastPath."""

    def __init__(self, workload: Workload, data: DeviceData, workers: int, seed: int = 0):
        self.workload, self.data = workload, data
        self.device = data.train.images.device
        self.model, self.mask, self.optimizer = baseline_start(workload, data, seed)
        # pin_memory on a GPU, as the reference implementation's loader has it
        self.loader = DataLoader(PILImages(data.train, baseline_transform(data)), batch_size=BATCH,
                                 shuffle=True, num_workers=workers, pin_memory=self.device.type == "cuda")
        self.images = len(data.train)

    def train_batches(self, limit: int | None = None) -> float:
        """Seconds for one pass over the loader (its workers start with it, as in every epoch of a
        DataLoader without persistent workers), or its first `limit` batches."""
        def run() -> None:
            self.model.train()
            for i, (images, labels) in enumerate(self.loader):
                images = images.to(self.device, non_blocking=True)
                labels = labels.to(self.device, non_blocking=True)
                loss = F.cross_entropy(self.model(images), labels)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                if limit is not None and i + 1 >= limit:
                    break
        return timed(run, self.data)

    def warm_up(self) -> None:
        self.train_batches(WARMUP_BATCHES)

    def images_per_second(self, repeat: int) -> float:
        torch.manual_seed(repeat)  # the loader's shuffle and the transforms' draws
        return self.images / self.train_batches()

    def train_epochs(self, epochs: int, seed: int, milestones: tuple[int, ...] = ()) -> None:
        """`epochs` epochs with the LR multiplied by GAMMA at each milestone epoch, as RoundSchedule does."""
        for epoch in range(epochs):
            lr = self.workload.lr * GAMMA ** sum(1 for m in milestones if epoch >= m)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            torch.manual_seed(seed * 1000 + epoch)
            self.train_batches()

    def test_accuracy(self) -> float:
        return accuracy(self.model, self.data.test, self.data, channels_last=False)


# --- FLOPs and the machine's peak ----------------------------------------------------------------

def step_flops(ours: FastPath) -> tuple[int, int]:
    """(training-step FLOPs, forward FLOPs) of one batch of BATCH images as train_round runs it (memory
    format included), counted by FlopCounterMode: matrix multiplications and convolutions only."""
    data = ours.data
    generator = torch.Generator(device=data.train.images.device).manual_seed(0)
    images = data.prepare(data.train.images[:BATCH], data.draw_augmentation(BATCH, generator), ours.train.channels_last)
    labels = data.train.labels[:BATCH]
    if ours.train.channels_last:
        ours.model.to(memory_format=torch.channels_last)
    ours.model.train()
    with FlopCounterMode(display=False) as forward_counter, torch.no_grad():
        ours.model(images)
    with FlopCounterMode(display=False) as step_counter:
        F.cross_entropy(ours.model(images), labels).backward()
    ours.model.zero_grad(set_to_none=True)
    return step_counter.get_total_flops(), forward_counter.get_total_flops()


MATMUL_SIZES = (512, 1024, 2048, 3072, 4096)  # square float32 matmuls tried for the peak
CONV_CHANNELS = (64, 128, 256)  # 3x3 convolutions (batch 128, 16x16, channels_last) tried for the peak
QUICK_MATMUL_SIZES, QUICK_CONV_CHANNELS = (256, 512), (64,)
OPS_PER_REPEAT = 3


def _flops_per_second(op: Callable[[], object], flops: float, device: torch.device | str) -> Callable[[int], float]:
    """A timing arm: FLOP/s of OPS_PER_REPEAT calls of `op` (`flops` each), after one warm-up call."""
    op()

    def run(_repeat: int) -> float:
        def ops() -> None:
            for _ in range(OPS_PER_REPEAT):
                op()
        return flops * OPS_PER_REPEAT / timed(ops, device)
    return run


def matmul_flops_per_second(n: int, device: torch.device | str = "cpu",
                            dtype: torch.dtype = torch.float32) -> Callable[[int], float]:
    """n x n matmul (2 n^3 FLOPs) through torch.mm (MKL/OpenBLAS/oneDNN on the CPU, cuBLAS on a GPU)."""
    a, b, out = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(3))
    return _flops_per_second(lambda: torch.mm(a, b, out=out), 2 * n**3, device)


def conv_flops_per_second(channels: int, device: torch.device | str = "cpu",
                          dtype: torch.dtype = torch.float32) -> Callable[[int], float]:
    """3x3 convolution, channels -> channels, batch 128 of 16x16, channels_last (oneDNN on the CPU, cuDNN on
    a GPU): the kernels the models train with. FLOPs counted as a direct convolution."""
    x = torch.randn(BATCH, channels, 16, 16, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    return _flops_per_second(lambda: F.conv2d(x, w, padding=1), 2 * BATCH * 16 * 16 * channels**2 * 9, device)


@dataclass(frozen=True)
class ComputePeak:
    flops: float  # the best float32 FLOP/s seen, over kernels, sizes and repeats
    kernel: str  # the kernel and size that reached it
    by_kernel: dict[str, float]  # the best of the repeats for each kernel and size
    dtype: str = "float32"

    def describe(self) -> str:
        rest = ", ".join(f"{k} {f / 1e9:,.0f}" for k, f in self.by_kernel.items())
        return f"{self.dtype} {self.flops / 1e9:,.1f} GFLOP/s ({self.kernel}; best per kernel, GFLOP/s: {rest})"


def compute_peak(quick: bool, repeats: int = 3, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> ComputePeak:
    """The machine's limit in `dtype` (float32, or bfloat16 for a path that autocasts) on the current threads:
    the fastest of several matmul sizes and 3x3 convolutions, each the best of `repeats` timings. Both kinds, because the libraries differ by machine:
    on AMD CPUs MKL's sgemm runs at about half the rate of oneDNN's convolutions (seen here: 110 against
    240-280 GFLOP/s on one core), so a matmul alone is a floor that training beats, not a limit. A peak
    is a maximum: one size timed once is no limit either."""
    arms = {f"matmul {n}": (matmul_flops_per_second, n) for n in (QUICK_MATMUL_SIZES if quick else MATMUL_SIZES)}
    arms |= {f"conv3x3 {c}ch": (conv_flops_per_second, c) for c in (QUICK_CONV_CHANNELS if quick else CONV_CHANNELS)}
    by_kernel = {}
    for name, (make, size) in arms.items():
        arm = make(size, device, dtype)
        by_kernel[name] = max(arm(r) for r in range(1 if quick else repeats))
    best = max(by_kernel, key=by_kernel.get)
    return ComputePeak(by_kernel[best], best, by_kernel, str(dtype).removeprefix("torch."))


def synchronize(device: torch.device | str) -> None:
    """Wait for the GPU's queued work, so that a timing covers it (no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def describe_device(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type != "cuda":
        return str(device)
    return f"{device} ({torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda})"


def finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)
