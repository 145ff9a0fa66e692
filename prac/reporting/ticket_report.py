"""The ticket a comparison recommends for each method (prac.reporting.best_tickets), as the CLI prints it and as the
comparison's Markdown summary shows it: where it is, how accurate, how small on disk."""
from __future__ import annotations

from rich.table import Table

from prac.reporting.best_tickets import BestTicket

HEADERS = ("method", "round", "sparsity", "why this round", "seed", "ticket test acc", "on disk", "smaller",
           "batch-1 latency", "faster")
TITLE = "the trained ticket to take away, per method"
CAPTION = ("round: the highest sparsity at which the method's tickets still match its reference · seed: the one whose "
           "ticket validated best there · on disk: kept values and a bit mask (safetensors); smaller: than its dense "
           "float32 weights · batch-1 latency: one sample on this CPU, {threads}, median, of the module "
           "`prac-lth export --batch 1` writes; faster: than the same ticket's dense layers, timed beside it")


def caption(tickets: list[BestTicket]) -> str:
    counts = sorted({t.latency_threads for t in tickets if not t.latency_note})
    threads = "/".join(map(str, counts)) + (" thread" if counts == [1] else " threads") if counts else "not timed"
    return CAPTION.format(threads=threads)


def _cells(t: BestTicket) -> list[str]:
    return [t.method, str(t.round), f"{100 * t.sparsity:.1f} %", t.rule, str(t.seed), f"{100 * t.ticket_test_acc:.2f} %",
            _size(t.file_bytes), f"{t.dense_bytes / t.file_bytes:.1f}×", *_latency(t)]


def _latency(t: BestTicket) -> list[str]:
    if t.latency_note:
        return ["not measured", "–"]
    return [f"{t.latency_us:,.1f} µs", f"{t.dense_latency_us / t.latency_us:.2f}×"]


def latency_notes(tickets: list[BestTicket]) -> list[str]:
    """One line per ticket whose latency this machine could not measure, saying why."""
    return [f"{t.method}: latency not measured here: {t.latency_note}" for t in tickets if t.latency_note]


def _size(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:,.2f} MiB"


def tickets_table(tickets: list[BestTicket]) -> Table:
    table = Table(title=TITLE, caption=caption(tickets))
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("method", "why this round") else "right")
    for t in tickets:
        table.add_row(*_cells(t))
    return table


def tickets_markdown(tickets: list[BestTicket]) -> list[str]:
    if not tickets:
        return []
    notes = latency_notes(tickets)
    return ["", f"**{TITLE[0].upper()}{TITLE[1:]}**: {caption(tickets)}.", "",
            "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS),
            *["| " + " | ".join(_cells(t)) + " |" for t in tickets],
            *(["", *notes] if notes else [])]
