"""tasks/heap.py: inside the block, big allocations get their own mapping (given back on free).

Run in a fresh interpreter: whether glibc serves a request from its heap also depends on
the free space the heap already holds, which a long test session makes unpredictable.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from affectflow.tasks.speech import heap

pytestmark = [pytest.mark.unit, pytest.mark.skipif(heap._glibc() is None, reason="mallopt is glibc's")]

SCENARIO = """
import json
from pathlib import Path
import numpy as np
from affectflow.tasks.speech import heap

SIZE = 8 << 20  # above the block's 4 MiB threshold, below glibc's 32 MiB maximum

def own_mapping():
    array = np.ones(SIZE, np.uint8)
    address = array.__array_interface__["data"][0]
    for line in Path("/proc/self/maps").read_text().splitlines():
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        if start <= address < end:
            return "[heap]" not in line and address - start <= 4096 and end - start < SIZE + (1 << 20)

seen = {}
heap.set_mmap_threshold(heap.GLIBC_DYNAMIC_MAX)  # as after a first use: big buffers from the heap
seen["before"] = own_mapping()
with heap.mmap_large_allocations():
    seen["inside"] = own_mapping()
    with heap.mmap_large_allocations():
        pass
    seen["inside, after a nested user left"] = own_mapping()
seen["after"] = own_mapping()
print(json.dumps(seen))
"""


def test_big_allocations_get_their_own_mapping_only_inside_the_block() -> None:
    result = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == {
        "before": False,
        "inside": True,
        "inside, after a nested user left": True,
        "after": False,
    }
