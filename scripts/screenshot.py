#!/usr/bin/env python3
"""Renders `tmux capture-pane -e -p` output (ANSI SGR colours) to a PNG.

Usage (scripts/screenshot does all of it): tmux capture-pane -e -p -t t > /tmp/screen.ansi
       python3 scripts/screenshot.py /tmp/screen.ansi assets/demo.png
Needs Pillow and the DejaVu Sans Mono font (dev-time only, not for tests).
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

PALETTE = [
    (30, 30, 30), (205, 49, 49), (13, 188, 121), (229, 229, 16),
    (36, 114, 200), (188, 63, 188), (17, 168, 205), (204, 204, 204),
    (118, 118, 118), (241, 76, 76), (35, 209, 139), (245, 245, 67),
    (59, 142, 234), (214, 112, 214), (41, 184, 219), (242, 242, 242),
]
FG, BG = (220, 220, 220), (24, 24, 27)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def color256(n):
    if n < 16:
        return PALETTE[n]
    if n < 232:
        n -= 16
        return tuple(0 if c == 0 else 55 + c * 40 for c in (n // 36, (n // 6) % 6, n % 6))
    v = 8 + (n - 232) * 10
    return (v, v, v)


def parse(line, state):
    cells = []
    pos = 0
    for m in SGR.finditer(line):
        for ch in line[pos:m.start()]:
            cells.append((ch, dict(state)))
        codes = [int(c) if c else 0 for c in m.group(1).split(";")] or [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                state.clear()
            elif c == 1:
                state["bold"] = True
            elif c == 7:
                state["rev"] = True
            elif c == 22:
                state.pop("bold", None)
            elif c == 27:
                state.pop("rev", None)
            elif 30 <= c <= 37:
                state["fg"] = PALETTE[c - 30]
            elif 90 <= c <= 97:
                state["fg"] = PALETTE[c - 90 + 8]
            elif 40 <= c <= 47:
                state["bg"] = PALETTE[c - 40]
            elif 100 <= c <= 107:
                state["bg"] = PALETTE[c - 100 + 8]
            elif c == 39:
                state.pop("fg", None)
            elif c == 49:
                state.pop("bg", None)
            elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                state["fg" if c == 38 else "bg"] = color256(codes[i + 2])
                i += 2
            elif c in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
                state["fg" if c == 38 else "bg"] = tuple(codes[i + 2:i + 5])
                i += 4
            i += 1
        pos = m.end()
    for ch in line[pos:]:
        cells.append((ch, dict(state)))
    return cells


def main(src, dst):
    lines = open(src, encoding="utf-8").read().rstrip("\n").split("\n")
    font, bold = ImageFont.truetype(FONT, 15), ImageFont.truetype(BOLD, 15)
    cw, ch = int(font.getlength("M")), 19
    width = max(len(SGR.sub("", l)) for l in lines)
    img = Image.new("RGB", (cw * width + 16, ch * len(lines) + 16), BG)
    draw = ImageDraw.Draw(img)
    state = {}
    for y, line in enumerate(lines):
        for x, (c, st) in enumerate(parse(line, state)):
            fg, bg = st.get("fg", FG), st.get("bg", BG)
            if st.get("rev"):
                fg, bg = bg, fg
            px, py = 8 + x * cw, 8 + y * ch
            if bg != BG:
                draw.rectangle([px, py, px + cw, py + ch], fill=bg)
            if c != " ":
                draw.text((px, py), c, font=bold if st.get("bold") else font, fill=fg)
    img.save(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
