"""What `prac-lth export` prints: per prunable layer its sparsity, the layout chosen and the dense and CSR medians
at each batch size; for the whole network the size on disk, the latency of the dense ticket, the sparse module
and the ONNX file, and how far their predictions agree with the dense ticket's on the test split."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from prac.export.agreement import Agreement
from prac.export.export_run import SPARSE_MARGIN, ExportResult
from prac.export.layer_timing import Timing

DASH = "–"


def duration(timing: Timing | None) -> str:
    if timing is None:
        return DASH
    seconds = timing.median
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def size(count: int) -> str:
    return f"{count / 1024:.1f} KiB" if count < 1024 ** 2 else f"{count / 1024 ** 2:.2f} MiB"


def agreed(result: Agreement) -> str:
    ties = f", {result.ties} rounding ties" if result.disagree else ""
    return f"{result.agree}/{result.samples} ({result.fraction:.2%}{ties})"


def layer_table(result: ExportResult) -> Table:
    batches = sorted(result.latency)
    forced = {row.why for row in result.layers} == {"forced"}
    rule = "formats forced" if forced else f"csr where CSR ran over {SPARSE_MARGIN:.0%} faster at batch {result.batch}"
    table = Table(title=f"round {result.round}: per prunable layer, medians with torch on {result.threads} "
                        f"thread(s); {rule}")
    for header in ("layer", "type", "sparsity", "format"):
        table.add_column(header)
    for size_ in batches:
        table.add_column(f"dense b{size_}", justify="right")
        table.add_column(f"csr b{size_}", justify="right")
    for row in result.layers:
        cells = [duration(timings.get(size_)) for size_ in batches for timings in (row.dense, row.sparse)]
        table.add_row(row.layer, row.type, f"{row.sparsity:.1%}", row.format, *cells)
    return table


def network_table(result: ExportResult) -> Table:
    table = Table(title=f"the network: sparsity {result.sparsity:.1%}, test split of {result.onnx.samples} samples")
    for header in ("", "PyTorch dense", "sparse module", "ONNX (onnxruntime)", "compact ticket"):
        table.add_column(header, justify="right" if header else "left")
    sizes = result.sizes
    table.add_row("size on disk", f"{size(sizes['dense_state'])} (float32 state dict)", size(sizes["sparse_module"]),
                  size(sizes["onnx"]), size(sizes["ticket"]))
    for batch, timings in sorted(result.latency.items()):
        table.add_row(f"latency, batch {batch}", duration(timings["dense"]), duration(timings["sparse"]),
                      duration(timings["onnx"]), DASH)
    table.add_row("predictions = PyTorch dense", DASH, agreed(result.sparse), agreed(result.onnx), DASH)
    table.add_row("max |Δ logit|", DASH, f"{result.sparse.max_abs_diff:.2e}", f"{result.onnx.max_abs_diff:.2e}", DASH)
    return table


def layout_summary(result: ExportResult) -> str:
    """Which layers the sparse module holds in CSR, and, where none, that it is the dense network: said, not hidden."""
    sparse = [row.layer for row in result.layers if row.format == "csr"]
    if not sparse:
        return (f"no layer ran faster in CSR at batch {result.batch} on {result.threads} thread(s): the sparse module "
                f"keeps every layer dense (it is the dense network)")
    return f"CSR layers in the sparse module: {', '.join(sparse)} ({len(sparse)} of {len(result.layers)})"


def load_note(result: ExportResult) -> str | None:
    """Said where the machine was busier than its cores while the timings ran: they, and the formats chosen by
    them, may then move from run to run (the predictions' checks do not)."""
    if result.load is None or result.load[0] <= result.load[1]:
        return None
    average, cpus = result.load
    return (f"note: the load average was {average:.1f} on {cpus} CPUs as the timings ended: other work shared the "
            f"cores, so the times and the formats chosen by them may differ on another run")


def print_export(result: ExportResult, console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 140))  # a pipe gets 80 columns: too narrow
    console.print(layer_table(result))
    console.print(network_table(result))
    console.print(layout_summary(result), soft_wrap=True)
    if note := load_note(result):
        console.print(note, soft_wrap=True)
    recorded = f"{result.ticket_test_acc:.4f}" if result.ticket_test_acc is not None else DASH
    console.print(f"test accuracy of the PyTorch ticket in float32: {result.test_acc:.4f} (ticket.json, in the run's "
                  f"{result.precision}: {recorded}); ONNX opset {result.onnx_check.opset}, input "
                  f"{list(result.onnx_check.input_shape)}", soft_wrap=True)
    console.print(f"written to {result.folder}: " + ", ".join(path.name for path in result.files.values()),
                  soft_wrap=True)
