#!/usr/bin/env python3
"""PNG reading and writing with the standard library only (8/16-bit gray,
gray+alpha, RGB, RGBA and palette images, no interlacing), and the test
images of the GIMP tests.

    pngtool.py make DIR        writes rgb.png rgba.png gray.png rgb16.png indexed.png (96x64)
                               and fullres.png (FULL x FULL, fine texture)
    pngtool.py info FILE...    prints size, colour type and bit depth
"""
import math
import struct
import sys
import zlib

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class Image:
    """Pixels as rows of ints (0..255 or 0..65535), channels interleaved.
    Palette images are expanded to RGB on reading (palette kept in .palette)."""

    def __init__(self, width, height, ctype, depth, rows, palette=None):
        self.width, self.height, self.ctype, self.depth = width, height, ctype, depth
        self.rows, self.palette = rows, palette

    @property
    def channels(self):
        return CHANNELS[self.ctype]

    @property
    def maxval(self):
        return (1 << self.depth) - 1

    def px(self, x, y):
        c = self.channels
        return self.rows[y][x * c:(x + 1) * c]

    @property
    def has_alpha(self):
        return self.ctype in (4, 6)

    @property
    def is_gray(self):
        return self.ctype in (0, 4)


def _chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def write_png(path, img):
    raw = bytearray()
    for r in img.rows:
        raw.append(0)
        if img.depth == 16:
            raw += struct.pack(">%dH" % len(r), *r)
        else:
            raw += bytes(r)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", img.width, img.height, img.depth,
                                                              img.ctype, 0, 0, 0))
    if img.ctype == 3:
        data += _chunk(b"PLTE", bytes(v for rgb in img.palette for v in rgb))
    data += _chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s: not a PNG" % path)
    pos, idat, hdr, plte = 8, b"", None, None
    while pos < len(data):
        (ln,) = struct.unpack(">I", data[pos:pos + 4])
        t, d = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + ln]
        pos += 12 + ln
        if t == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", d)
        elif t == b"PLTE":
            plte = [tuple(d[i:i + 3]) for i in range(0, len(d), 3)]
        elif t == b"IDAT":
            idat += d
    w, h, depth, ctype, _, _, interlace = hdr
    if interlace or depth not in (8, 16) and not (ctype == 3 and depth in (1, 2, 4, 8)):
        raise ValueError("%s: unsupported depth %d / interlace %d" % (path, depth, interlace))
    ch = CHANNELS[ctype]
    bits = ch * depth
    stride = (w * bits + 7) // 8
    bpp = max(1, bits // 8)
    raw = zlib.decompress(idat)
    rows, prev, p = [], bytearray(stride), 0
    for _ in range(h):
        ft = raw[p]
        line = bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        prev = line
        if depth == 16:
            rows.append(list(struct.unpack(">%dH" % (w * ch), bytes(line))))
        elif depth == 8:
            rows.append(list(line))
        else:  # packed palette indices
            per = 8 // depth
            rows.append([(line[x // per] >> (8 - depth * (x % per + 1))) & ((1 << depth) - 1) for x in range(w)])
    if ctype == 3:  # expand the palette
        rows = [[v for i in r for v in plte[i]] for r in rows]
        return Image(w, h, 2, 8, rows, palette=plte)
    return Image(w, h, ctype, depth, rows)


# --- the test images: a coloured object on a background, like the demo dataset ---

W, H = 96, 64


def scene(x, y):
    """(r, g, b) in [0, 1]: a red disc on the left on a blue vertical gradient,
    with a faint texture so that every pixel differs a little."""
    t = y / (H - 1)
    r, g, b = 0.16 + 0.10 * t, 0.27 + 0.15 * t, 0.84 - 0.30 * t
    r += 0.03 * math.sin(x * 0.7) * math.cos(y * 0.5)
    cx, cy, rad = 0.30 * W, 0.5 * H, 0.28 * H
    d = math.hypot(x + 0.5 - cx, y + 0.5 - cy) - rad
    cover = min(1.0, max(0.0, 0.5 - d))  # anti-aliased edge
    r = r + cover * (0.84 - r)
    g = g + cover * (0.14 - g)
    b = b + cover * (0.14 - b)
    return [min(1.0, max(0.0, v)) for v in (r, g, b)]


# The full-resolution scene (tests/fullres_scene.h in small): the demo model's
# red disc on the left on blue, with a weave (period 6 px), thin dark strokes
# and grain that a 64-pixel render cannot carry.
FULL = 384
FULL_DISC = (0.28 * FULL, 0.5 * FULL, 0.19 * FULL)  # centre x, y, radius


def fullres_scene():
    import random
    rnd = random.Random(1)
    cx, cy, rad = FULL_DISC
    lines = [(math.sin(a), math.cos(a), (rnd.random() - 0.5) * FULL)
             for a in [rnd.random() * math.pi for _ in range(8)]]
    rows = []
    for y in range(FULL):
        row = []
        for x in range(FULL):
            cov = min(1.0, max(0.0, rad - math.hypot(x + 0.5 - cx, y + 0.5 - cy) + 0.5))
            base = [(40 + (215 - 40) * cov) / 255, (70 + (35 - 70) * cov) / 255, (215 + (35 - 215) * cov) / 255]
            t = 0.03 * math.sin(2 * math.pi * (x + 0.5) / 6) * math.sin(2 * math.pi * (y + 0.5) / 6)
            for sa, ca, off in lines:
                d = abs((x + 0.5 - FULL / 2) * sa - (y + 0.5 - FULL / 2) * ca - off)
                if d < 1.5:
                    t -= 0.12 * (1.5 - d) / 1.5
            row += [round(255 * min(1.0, max(0.0, v + t + rnd.gauss(0, 0.03)))) for v in base]
        rows.append(row)
    return Image(FULL, FULL, 2, 8, rows)


def make_images(folder):
    rgb, rgba, gray, rgb16 = [], [], [], []
    for y in range(H):
        r1, r2, r3, r4 = [], [], [], []
        for x in range(W):
            c = scene(x, y)
            c8 = [round(v * 255) for v in c]
            r1 += c8
            alpha = round(255 * (1.0 - 0.75 * x / (W - 1)))  # a left-to-right ramp 255 -> 64
            r2 += c8 + [alpha]
            r3.append(round(255 * (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])))
            # 16-bit values that are not multiples of 257: an 8-bit round trip would show
            r4 += [min(65535, round(v * 65535) + (x * 7 + y * 3) % 200) for v in c]
        rgb.append(r1)
        rgba.append(r2)
        gray.append(r3)
        rgb16.append(r4)
    write_png(folder + "/rgb.png", Image(W, H, 2, 8, rgb))
    write_png(folder + "/rgba.png", Image(W, H, 6, 8, rgba))
    write_png(folder + "/gray.png", Image(W, H, 0, 8, gray))
    write_png(folder + "/rgb16.png", Image(W, H, 2, 16, rgb16))
    palette = [(40, 70, 215), (215, 35, 35), (240, 240, 240), (25, 25, 25)]
    idx = [[1 if math.hypot(x - 0.3 * W, y - 0.5 * H) < 0.28 * H else (0 if y < H - 8 else 3) for x in range(W)]
           for y in range(H)]
    write_png(folder + "/indexed.png", Image(W, H, 3, 8, idx, palette=palette))
    write_png(folder + "/fullres.png", fullres_scene())


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make_images(sys.argv[2])
        print("wrote rgb.png rgba.png gray.png rgb16.png indexed.png (%dx%d) in %s" % (W, H, sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "info":
        for f in sys.argv[2:]:
            im = read_png(f)
            print("%s: %dx%d colour type %d, %d bit" % (f, im.width, im.height, im.ctype, im.depth))
    else:
        print(__doc__)
        sys.exit(2)
