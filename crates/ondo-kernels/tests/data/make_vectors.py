"""Dequantization test vectors for ondo-kernels, made with gguf-py's reference dequantizers.

Run with the venv that fetch.sh makes (gguf 0.19.0, numpy):
    $ONDO_TEST_MODELS/.venv/bin/python make_vectors.py > dequant_vectors.bin
Output: for each format, u32 ggml type id, u32 block count, the raw blocks, then the f32 values.
Blocks are random bytes except their f16 scale fields, which are set to finite values of
mixed sign so every bit of the packed fields is exercised.
"""
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

BLOCKS = 3
# type -> (block bytes, byte offsets of f16 scale fields)
FORMATS = {
    T.Q4_0: (18, [0]),
    T.Q4_1: (20, [0, 2]),
    T.Q5_0: (22, [0]),
    T.Q5_1: (24, [0, 2]),
    T.Q8_0: (34, [0]),
    T.Q2_K: (84, [80, 82]),
    T.Q3_K: (110, [108]),
    T.Q4_K: (144, [0, 2]),
    T.Q5_K: (176, [0, 2]),
    T.Q6_K: (210, [208]),
}

rng = np.random.default_rng(1234)
out = sys.stdout.buffer
for qtype, (nbytes, scale_offsets) in FORMATS.items():
    raw = rng.integers(0, 256, size=(BLOCKS, nbytes), dtype=np.uint8)
    for b in range(BLOCKS):
        for off in scale_offsets:
            v = np.float16(rng.uniform(-0.05, 0.05))
            raw[b, off : off + 2] = np.frombuffer(v.tobytes(), dtype=np.uint8)
    values = dequantize(raw.reshape(-1), qtype).astype("<f4").reshape(-1)
    out.write(struct.pack("<II", int(qtype), BLOCKS))
    out.write(raw.tobytes())
    out.write(values.tobytes())
