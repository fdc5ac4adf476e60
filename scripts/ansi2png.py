#!/usr/bin/env python3
"""Render a terminal screen captured with `tmux capture-pane -e -p` to PNG.

Every cell is drawn at its column with its SGR colours and attributes
(bold, dim, underline, reverse, strike-through), in DejaVu Sans Mono, so
the picture is what the terminal showed. Needs Pillow (pip install pillow).

usage: ansi2png.py SCREEN.ansi OUT.png [font-size]
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
BG, FG = (24, 26, 31), (214, 218, 224)
# xterm-like 16 colours, tuned for a dark background.
BASE16 = [
    (40, 44, 52), (224, 108, 117), (152, 195, 121), (229, 192, 123),
    (97, 175, 239), (198, 120, 221), (86, 182, 194), (200, 204, 212),
    (110, 118, 129), (255, 123, 134), (172, 220, 140), (245, 210, 140),
    (120, 190, 255), (215, 140, 240), (110, 205, 215), (255, 255, 255),
]


def xterm256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return (v, v, v)


class Pen:
    def __init__(self):
        self.reset()

    def reset(self):
        self.fg = None
        self.bg = None
        self.bold = self.dim = self.under = self.rev = self.strike = False

    def sgr(self, params):
        ps = [int(p) if p else 0 for p in params.split(";")] if params else [0]
        i = 0
        while i < len(ps):
            p = ps[i]
            if p == 0:
                self.reset()
            elif p == 1:
                self.bold = True
            elif p == 2:
                self.dim = True
            elif p == 4:
                self.under = True
            elif p == 7:
                self.rev = True
            elif p == 9:
                self.strike = True
            elif p == 22:
                self.bold = self.dim = False
            elif p == 24:
                self.under = False
            elif p == 27:
                self.rev = False
            elif p == 29:
                self.strike = False
            elif 30 <= p <= 37:
                self.fg = BASE16[p - 30]
            elif 90 <= p <= 97:
                self.fg = BASE16[p - 90 + 8]
            elif 40 <= p <= 47:
                self.bg = BASE16[p - 40]
            elif 100 <= p <= 107:
                self.bg = BASE16[p - 100 + 8]
            elif p == 39:
                self.fg = None
            elif p == 49:
                self.bg = None
            elif p in (38, 48) and i + 1 < len(ps):
                if ps[i + 1] == 5 and i + 2 < len(ps):
                    c = xterm256(ps[i + 2])
                    i += 2
                elif ps[i + 1] == 2 and i + 4 < len(ps):
                    c = tuple(ps[i + 2:i + 5])
                    i += 4
                else:
                    c = None
                if p == 38:
                    self.fg = c
                else:
                    self.bg = c
            i += 1

    def colours(self):
        fg = self.fg or FG
        bg = self.bg or BG
        if self.dim:
            fg = tuple((a + b) // 2 for a, b in zip(fg, bg))
        if self.rev:
            fg, bg = (self.bg or BG), (self.fg or FG)
        return fg, bg


def parse(text):
    rows = []
    pen = Pen()
    for line in text.split("\n"):
        cells = []
        for m in re.finditer(r"\x1b\[([0-9;]*)m|\x1b\[[0-9;?]*[A-Za-z]|(.)", line):
            if m.group(2) is not None:
                fg, bg = pen.colours()
                cells.append((m.group(2), fg, bg, pen.bold, pen.under, pen.strike))
            elif m.group(0).endswith("m"):
                pen.sgr(m.group(1))
        rows.append(cells)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def render(rows, out, size=16):
    font = ImageFont.truetype(FONT, size)
    bold = ImageFont.truetype(BOLD, size)
    cw = round(font.getlength("M"))
    ch = round(size * 1.3)
    cols = max((len(r) for r in rows), default=1)
    pad = 12
    img = Image.new("RGB", (cols * cw + 2 * pad, len(rows) * ch + 2 * pad), BG)
    d = ImageDraw.Draw(img)
    for y, row in enumerate(rows):
        for x, (c, fg, bg, b, u, s) in enumerate(row):
            x0, y0 = pad + x * cw, pad + y * ch
            if bg != BG:
                d.rectangle([x0, y0, x0 + cw - 1, y0 + ch - 1], fill=bg)
            if c in "│┃":
                d.line([x0 + cw // 2, y0, x0 + cw // 2, y0 + ch], fill=fg)
            elif c in "─━":
                d.line([x0, y0 + ch // 2, x0 + cw, y0 + ch // 2], fill=fg)
            elif c in "┌┐└┘":
                mx, my = x0 + cw // 2, y0 + ch // 2
                d.line([mx, y0 if c in "└┘" else my, mx, my if c in "└┘" else y0 + ch], fill=fg)
                d.line([x0 if c in "┐┘" else mx, my, mx if c in "┐┘" else x0 + cw, my], fill=fg)
            elif c == "█":
                d.rectangle([x0, y0 + 2, x0 + cw - 1, y0 + ch - 3], fill=fg)
            elif c in "▏▎▍▌▋▊▉":
                w = (("▏▎▍▌▋▊▉".index(c) + 1) * cw) // 8
                d.rectangle([x0, y0 + 2, x0 + max(w, 1) - 1, y0 + ch - 3], fill=fg)
            elif c != " ":
                d.text((x0, y0 + (ch - size) // 2 - 1), c, font=bold if b else font, fill=fg)
            if u:
                d.line([x0, y0 + ch - 2, x0 + cw, y0 + ch - 2], fill=fg)
            if s:
                d.line([x0, y0 + ch // 2, x0 + cw, y0 + ch // 2], fill=fg)
    img.save(out)


if __name__ == "__main__":
    text = open(sys.argv[1], encoding="utf-8").read()
    render(parse(text), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 16)
