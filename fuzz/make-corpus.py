#!/usr/bin/env python3
"""Seed corpora for the libFuzzer harnesses (fuzz/*.cc): small valid files of each kind.

    /usr/bin/python3 fuzz/make-corpus.py OUT_DIR

writes OUT_DIR/<target>/<name> for fuzz_json, fuzz_image, fuzz_checkpoint.
Uses Debian's python3-numpy, python3-opencv and python3-torch (the test oracles); kinds
whose module is missing are skipped with a note. Deterministic (fixed seeds)."""
import json
import os
import struct
import sys
import zlib

out = sys.argv[1] if len(sys.argv) > 1 else "build-fuzz/corpus"


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def png_chunk(t, data):
    return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)


def png(w, h, color_type, bit_depth, rows, extra=b""):
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")


def safetensors(tensors, metadata=None):
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(payload)]}
        blobs.append(payload)
        off += len(payload)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


# --- JSON: headers and bundle metadata as the library writes them -----------------
meta = {"format": "pt", "anomalyncd.format_version": "1", "anomalyncd.arch": json.dumps({"patchSize": 8, "embedDim": 16})}
put("fuzz_json", "metadata.json", json.dumps(meta).encode())
put("fuzz_json", "header.json", json.dumps({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, "__metadata__": meta}).encode())
put("fuzz_json", "values.json", b'[1, -2.5e3, 0.1, true, false, null, "\\u00e9\\n", {"k": [[], {}]}, 9007199254740993]')

# --- images: grey/RGB/palette/16-bit PNGs (libpng and OpenCV paths), JPEG, BMP, TIFF ---
w, h = 8, 6
grey = [bytes((x * 31 + y * 17) & 255 for x in range(w)) for y in range(h)]
put("fuzz_image", "grey8.png", png(w, h, 0, 8, grey))
put("fuzz_image", "grey1.png", png(w, h, 0, 1, [bytes([0b10110010]) for _ in range(h)]))
put("fuzz_image", "grey16.png", png(w, h, 0, 16, [bytes(v for x in range(w) for v in (x * 30, y)) for y in range(h)]))
put("fuzz_image", "rgb8.png", png(w, h, 2, 8, [bytes(v for x in range(w) for v in (x * 30, y * 40, 99)) for y in range(h)]))
put("fuzz_image", "palette.png", png(w, h, 3, 8, [bytes(x % 2 for x in range(w)) for _ in range(h)], png_chunk(b"PLTE", b"\x00\x00\x00\xff\x80\x00")))
put("fuzz_image", "grey_trns.png", png(w, h, 0, 8, grey, png_chunk(b"tRNS", b"\x00\x05")))
try:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    for ext in (".jpg", ".bmp", ".tiff", ".webp", ".pgm"):
        ok, buf = cv2.imencode(ext, img if ext != ".pgm" else img[:, :, 0])
        if ok:
            put("fuzz_image", "opencv" + ext, buf.tobytes())
    ok, buf = cv2.imencode(".jpg", img[:, :, 0])
    put("fuzz_image", "grey.jpg", buf.tobytes())
except ImportError as e:
    print("make-corpus: no OpenCV (%s): JPEG/BMP/TIFF seeds skipped" % e)

# --- safetensors: F32/F16/BF16/F64, metadata (a bundle-like file) ------------------
f32 = struct.pack("<6f", *[0.5, -1, 2, 3.25, 0, 1e-3])
put("fuzz_checkpoint", "f32.safetensors", safetensors({"w": ("F32", [2, 3], f32)}))
put("fuzz_checkpoint", "mixed.safetensors", safetensors({
    "a": ("F16", [2], b"\x00\x3c\x00\xc0"), "b": ("BF16", [1, 2], b"\x80\x3f\x00\x40"),
    "c": ("F64", [1], struct.pack("<d", 7.5)), "empty": ("F32", [0, 4], b"")}, meta))
put("fuzz_checkpoint", "bundle-like.safetensors", safetensors({"projector.fc1.weight": ("F32", [2, 3], f32)}, meta))

# --- torch.save zips: plain / DINO-wrapped state dicts, views, parameters ---------
try:
    import io
    from collections import OrderedDict

    import torch

    torch.manual_seed(0)
    sd = OrderedDict(cls_token=torch.randn(1, 1, 4), pos_embed=torch.randn(1, 5, 4), w=torch.randn(3, 4).t())
    base = torch.arange(12, dtype=torch.float32)
    sd["view"] = base[2:8].view(2, 3)
    sd["half"] = torch.randn(2, 2).half()
    sd["param"] = torch.nn.Parameter(torch.ones(2))
    for name, obj in (("plain.pth", sd), ("teacher.pth", {"teacher": sd, "epoch": 3}), ("module.pth", {"state_dict": {"module." + k: v for k, v in sd.items()}})):
        b = io.BytesIO()
        torch.save(obj, b)
        put("fuzz_checkpoint", name, b.getvalue())
except ImportError as e:
    print("make-corpus: no torch (%s): torch.save seeds skipped" % e)

print("make-corpus: wrote", sum(len(fs) for _, _, fs in os.walk(out)), "files under", out)
