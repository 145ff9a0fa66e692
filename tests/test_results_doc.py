"""docs/results.md against the repository: every figure (![...](...)) and every document or table link ([...](...)) it
makes to a relative path points to a file that exists, and an anchor after # names a heading of its target. Fast: it
reads markdown and bench/results.py's settings (no training). And each shipped table shows its setting's command."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results.md"

# [text](target) and ![alt](target), the target up to the first space or closing parenthesis (an optional "title"
# after a space is ignored). Nested brackets in the text are not used in these documents.
LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def prose_lines(text: str):
    """(line number, line) of the lines outside fenced code blocks, inline code removed."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, INLINE_CODE.sub("", line)


def links(text: str) -> list[tuple[int, bool, str]]:
    """(line number, is a figure, target) of every link in the prose of `text`."""
    return [(number, bool(m.group(1)), m.group(3)) for number, line in prose_lines(text) for m in LINK.finditer(line)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters, digits, _ and - kept), spaces to -."""
    heading = re.sub(r"[*_`]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip())
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of the headings of a markdown text; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(text):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(text: str, base: Path, root: Path = ROOT) -> list[str]:
    """One line per relative link of `text` (a document in folder `base`) whose target does not exist under `root`,
    or whose #anchor names no heading of its markdown target. External links (https:, mailto:) are not checked."""
    problems = []
    for number, figure, target in links(text):
        if EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        kind = "figure" if figure else "link"
        if path_part:
            path = (base / path_part).resolve()
            if root.resolve() not in (path, *path.parents):
                problems.append(f"line {number}: {kind} {target} points outside the repository")
                continue
            if not path.exists():
                problems.append(f"line {number}: {kind} {target}: no such file {path.relative_to(root.resolve())}")
                continue
        else:
            path = None  # an anchor in the document itself
        if anchor:
            headings = anchors(text) if path is None else (
                anchors(path.read_text(encoding="utf-8")) if path.suffix == ".md" else None)
            if headings is not None and anchor.lower() not in headings:
                problems.append(f"line {number}: {kind} {target}: no heading #{anchor} there")
    return problems


def test_every_figure_and_link_of_results_md_exists():
    text = RESULTS.read_text(encoding="utf-8")
    found = links(text)
    # Not vacuous: the page shows figures and links its tables.
    assert sum(figure for _, figure, _ in found) >= 5, found
    assert any(not figure and target.endswith(".md") for _, figure, target in found), found
    assert broken_links(text, RESULTS.parent) == []


def test_the_tables_results_md_links_are_those_bench_results_writes():
    """The shipped tables the page quotes are there (bench/results.py writes tables.md and tables-NAME.md)."""
    targets = {target.partition("#")[0] for _, _, target in links(RESULTS.read_text(encoding="utf-8"))}
    for name in ("results/tables.md", "results/tables-lenet-equal-budget.md",
                 "results/tables-conv4-quarter-equal-budget.md"):
        assert name in targets, f"docs/results.md no longer links {name}"


def test_a_missing_figure_or_document_is_reported(tmp_path):
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "there.png").write_bytes(b"\x89PNG")
    (tmp_path / "docs" / "results" / "tables.md").write_text("# Tables\n\n### lenet-epochs\n", encoding="utf-8")
    text = "\n".join([
        "# Page",
        "![ok](results/there.png)",
        "![gone](results/not-there.png)",
        "See [the tables](results/tables.md) and [the other tables](results/tables-missing.md).",
        "A [section](results/tables.md#lenet-epochs) and a [wrong one](results/tables.md#no-such-heading).",
        "Here: [top](#page), [nowhere](#nowhere), [web](https://example.org/x.png).",
        "```",
        "![in a code block](results/ignored.png)",
        "```",
        "Inline `![code](results/ignored-too.png)` is not a link.",
        "[outside](../../etc/passwd)",
    ])
    problems = broken_links(text, tmp_path / "docs", root=tmp_path)
    reported = {re.match(r"line (\d+): (?:figure|link) (\S+?):? ", p).groups() for p in problems}
    assert reported == {("3", "results/not-there.png"), ("4", "results/tables-missing.md"),
                        ("5", "results/tables.md#no-such-heading"), ("6", "#nowhere"),
                        ("11", "../../etc/passwd")}, problems


def test_an_existing_figure_is_not_reported(tmp_path):
    (tmp_path / "fig.png").write_bytes(b"")
    assert broken_links("![f](fig.png) [d](fig.png)", tmp_path, root=tmp_path) == []
    assert broken_links("![f](missing.png)", tmp_path, root=tmp_path) != []


@pytest.mark.parametrize("heading, anchor", [
    ("9b. The paper's baselines at equal budget (`lenet-equal-budget`)",
     "9b-the-papers-baselines-at-equal-budget-lenet-equal-budget"),
    ("Ticket retrains beside the next round", "ticket-retrains-beside-the-next-round"),
    ("11. A conv net: Conv-4 at a quarter of its channels", "11-a-conv-net-conv-4-at-a-quarter-of-its-channels"),
])
def test_heading_anchors_follow_github(heading, anchor):
    assert slug(heading) == anchor


def test_each_shipped_table_names_the_command_bench_results_runs_for_it():
    """A setting's table in docs/results/ shows the command bench/results.py runs for it today (the rates it was
    measured with pinned), so the command beside a number reproduces that setting."""
    import re
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    import results

    commands = {s.name: s.command() for s in results.SETTINGS}
    seen = {}
    for path in sorted((ROOT / "docs" / "results").glob("tables*.md")):
        current = None
        for line in path.read_text().splitlines():
            if heading := re.match(r"^### (\S+)$", line):
                current = heading.group(1)
            elif current and line.startswith("`prac-lth compare"):
                seen[current] = line.strip("`")
                current = None
    assert seen, "no setting's command found in docs/results/"
    for name, command in seen.items():
        assert command == commands[name], name
