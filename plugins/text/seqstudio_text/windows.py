"""Cutting a long document into training windows: at paragraph or line starts, and for ABC with the tune's header.

A document that fits the window is one window. A longer one is cut into consecutive pieces, each cut placed at
the last paragraph start (after a blank line) that keeps at least half a window, else at the last line start that
fits, else (a line longer than the window) inside the line.

ABC tunes: a piece that starts inside a tune's body gets that tune's header (its ``X:`` line through its ``K:``
line) in front of it, so every training window of a tune starts like a tune. Without it, a model trained on a
collection where one tune in twelve is longer than the window learns to start about one sample in twelve in the
middle of a tune, without the key and meter that make it ABC.
"""

from __future__ import annotations

import bisect

Span = tuple[int, int, "tuple[int, int] | None"]  # (start, end, carried header span or None)


def _lines(texts: list[str]) -> tuple[list[int], set[int], list[int]]:
    """Line starts (positions 1..n-1, sorted), paragraph starts, and each token's character offset."""
    lines, paragraphs, offsets = [], set(), []
    tail, offset = "", 0
    for i, text in enumerate(texts):
        if i and tail.endswith("\n"):
            lines.append(i)
            if tail.endswith("\n\n"):
                paragraphs.add(i)
        offsets.append(offset)
        offset += len(text)
        tail = (tail + text)[-2:]
    return lines, paragraphs, offsets


def _abc_headers(texts: list[str], lines: list[int], offsets: list[int]) -> list[tuple[int, int]]:
    """``(tune start, header end)`` token positions of every tune (header end: the line start after ``K:``).

    One pass over the line starts (each line is looked at by at most one tune), so a book of many thousand
    tunes costs time linear in its length."""
    joined = "".join(texts)
    starts = [0, *lines]
    begins = lambda pos, prefix: joined.startswith(prefix, offsets[pos])  # noqa: E731
    headers = []
    k = 0
    while k < len(starts):
        if not begins(starts[k], "X:"):
            k += 1
            continue
        m = k + 1
        while m < len(starts) and not begins(starts[m], "X:"):
            if begins(starts[m], "K:"):
                if m + 1 < len(starts):
                    headers.append((starts[k], starts[m + 1]))
                break
            m += 1
        k += 1
    return headers


def plan_windows(texts: list[str], window: int, abc: bool = False) -> list[Span]:
    """Spans covering tokens ``0..len(texts)`` (``texts``: each token's text), each at most ``window`` long with
    its carried header; ``window`` <= 0 or a short document gives one span."""
    n = len(texts)
    if window <= 0 or n <= window:
        return [(0, n, None)]
    lines, paragraphs, offsets = _lines(texts)
    headers = _abc_headers(texts, lines, offsets) if abc else []
    tune_starts = [h[0] for h in headers]

    def header_for(start: int):
        """The header to carry for a piece starting at ``start`` (None at a tune start or inside a header)."""
        k = bisect.bisect_right(tune_starts, start) - 1
        if k < 0 or start < headers[k][1]:
            return None
        tune, end = headers[k]
        return (tune, end) if end - tune <= window // 2 else None  # a huge header would leave no room

    spans, start, i = [], 0, 0
    while True:
        header = header_for(start) if start else None
        budget = window - (header[1] - header[0] if header else 0)
        if n - start <= budget:
            spans.append((start, n, header))
            return spans
        limit = start + budget
        while i < len(lines) and lines[i] <= start:
            i += 1
        j, best_line, best_paragraph = i, None, None
        while j < len(lines) and lines[j] <= limit:
            best_line = lines[j]
            if lines[j] in paragraphs and lines[j] - start >= budget // 2:
                best_paragraph = lines[j]
            j += 1
        cut = best_paragraph or best_line or limit
        spans.append((start, cut, header))
        start = cut
