#!/bin/bash
# Batch throughput on the demo model: edits per minute of `invedit batch` with
# 1 shard and with 2 shards under GNU parallel (prints numbers; not a test).
#
#   bench/batch.sh [build/cli/invedit] [items (default 18)] [device (default cpu)]
#
# The manifest has one image per item (so no item reuses another's inversion),
# the three methods in turn at their defaults, and --no-cache (so nothing
# comes from an earlier run). Wall time includes each shard's model load.
set -eu
inv=$(realpath "${1:-build/cli/invedit}")
n=${2:-18}
dev=${3:-cpu}
root=$(cd "$(dirname "$0")/.." && pwd)
model=$root/models/demo
work=$(mktemp -d /tmp/invedit-bench-batch-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
/usr/bin/python3 - "$n" <<'PY'
import sys
from PIL import Image, ImageDraw
n = int(sys.argv[1])
methods = ["ef-ddpm", "bdia", "infedit"]
with open("m.jsonl", "w") as f:
    for k in range(n):
        im = Image.new("RGB", (64, 64), (30, 40, 150 + 5 * (k % 20)))
        ImageDraw.Draw(im).ellipse([6 + k % 5, 20, 30 + k % 5, 44], fill=(220, 30 + 3 * k % 60, 30))
        im.save(f"in{k}.png")
        m = methods[k % 3]
        extra = ', "cfg-target": 5' if m == "ef-ddpm" else (', "cfg-source": 2, "cfg-target": 2' if m == "bdia" else ', "blend-words": "yellow"')
        f.write('{"image": "in%d.png", "source": "a red circle on the left on a blue background", '
                '"target": "a yellow circle on the left on a blue background", "output": "OUT/%d.png", '
                '"method": "%s"%s}\n' % (k, k, m, extra))
PY
run() { # shards
    local s=$1
    rm -rf OUT; mkdir OUT
    local t0 t1
    t0=$(date +%s.%N)
    if [ "$s" = 1 ]; then
        "$inv" batch m.jsonl --model "$model" --device "$dev" --no-cache -q 2>log.$s
    else
        parallel -j "$s" "\"$inv\" batch m.jsonl --model \"$model\" --device \"$dev\" --no-cache -q --shard {}/$s 2>log.$s.{}" ::: $(seq 0 $((s - 1)))
    fi
    t1=$(date +%s.%N)
    local done
    done=$(ls OUT | wc -l)
    awk -v a="$t0" -v b="$t1" -v n="$done" -v s="$s" \
        'BEGIN { printf "%d shard(s): %d edits in %.1f s = %.1f edits per minute\n", s, n, b - a, n * 60 / (b - a) }'
}
echo "demo model, $n items (ef-ddpm, bdia, infedit in turn, defaults), device $dev, $(nproc) CPUs"
run 1
run 2
