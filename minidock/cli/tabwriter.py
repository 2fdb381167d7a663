"""Go's text/tabwriter as Docker's tables use it (minwidth 10, padding 3,
padded with spaces): every `ls`/`ps` table and `--format 'table …'`.
Stdlib-free, so the fast path aligns its tables with the same code.
"""

from __future__ import annotations


def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's tabwriter.NewWriter(out, minwidth, 1, padding, ' ', 0) applied to *text*.

    Cells are tab-terminated; a column block is a run of consecutive lines that have
    a cell in that column, all padded to max(minwidth, widest cell + padding).
    """
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            for j, cell in enumerate(lines[i]):
                out.append(cell + " " * (widths[j] - len(cell)) if j < len(widths) else cell)
            out.append("\n" if i + 1 < len(lines) else "")

    def block(lo: int, hi: int) -> None:
        col, start, i = len(widths), lo, lo
        while i < hi:
            if col >= len(lines[i]) - 1:
                i += 1
                continue
            write(start, i)
            start, width = i, minwidth
            while i < hi and col < len(lines[i]) - 1:
                width = max(width, len(lines[i][col]) + padding)
                i += 1
            widths.append(width)
            block(start, i)
            widths.pop()
            start = i
        write(start, hi)

    block(0, len(lines))
    return "".join(out)


def tabulate(lines: list[list[str]]) -> str:
    """Align rows of cells like docker's tables (tabwriter minwidth 10, padding 3).

    Every row ends with a newline; the last cell of a row is never padded.
    """
    return tabwrite("".join("\t".join(cells) + "\n" for cells in lines)) if lines else ""
