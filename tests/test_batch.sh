#!/bin/bash
# invedit batch on the demo model (CPU backend):
#   - 2 shards under GNU parallel; shard 1 is killed (SIGKILL, as a pre-emption
#     would) after its first output and restarted;
#   - afterwards every output exists exactly once, decodes, and has its input's
#     size; no temporary file is left; no edit ran twice (the restart skipped
#     what was done); the shards' items are disjoint;
#   - failed items are reported, the batch goes on, and the exit status is
#     their number; a bad manifest line is named by its line number.
# usage: test_batch.sh path/to/invedit    (exit 77 = skipped: no GNU parallel / PIL)
set -u
inv=$(realpath "$1")
root=${INVEDIT_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
model="$root/models/demo"
py=/usr/bin/python3
command -v parallel >/dev/null || { echo "GNU parallel not installed: skipped"; exit 77; }
$py -c "import PIL" 2>/dev/null || { echo "python3-pil not installed: skipped"; exit 77; }

work=$(mktemp -d /tmp/invedit-test-batch-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
export INVEDIT_CACHE_DIR="$work/cache"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }

# four input images of different sizes; 12 items over them, three methods, one item with two targets
$py - <<'EOF'
from PIL import Image, ImageDraw
sizes = [(64, 64), (80, 60), (48, 72), (100, 100)]
cols = [(220, 30, 30), (30, 200, 40), (240, 220, 20), (200, 40, 200)]
for i, (w, h) in enumerate(sizes):
    im = Image.new("RGB", (w, h), (30, 40, 200))
    d = ImageDraw.Draw(im)
    d.ellipse([w * 0.1, h * 0.3, w * 0.5, h * 0.7], fill=cols[i])
    im.save(f"in{i}.png")
methods = ["infedit", "bdia", "ef-ddpm"]
with open("m.jsonl", "w") as f:
    f.write("# the batch test's manifest\n")
    for k in range(12):
        m = methods[k % 3]
        steps = {"infedit": 6, "bdia": 10, "ef-ddpm": 12}[m]
        tgt = '"a yellow circle on the left on a blue background"'
        out = f"out/item{k:02d}.png"
        if k == 4:
            tgt = '["a yellow circle on the left on a blue background", "a green circle on the left on a blue background"]'
            out = "out/item04-%d.png"
        f.write('{"image": "in%d.png", "source": "a red circle on the left on a blue background", "target": %s, '
                '"output": "%s", "method": "%s", "steps": %d, "seed": %d}\n' % (k % 4, tgt, out, m, steps, k))
        if k == 5:
            f.write("\n")
EOF
mkdir -p out
expected=$(for k in $(seq 0 11); do if [ $k = 4 ]; then echo out/item04-1.png; echo out/item04-2.png; else printf 'out/item%02d.png\n' $k; fi; done | sort)

# the two shards; each records its process id so that the test can kill shard 1 alone
parallel --line-buffer -j 2 "sh -c 'echo \$\$ > pid.{}; exec \"$inv\" batch m.jsonl --model \"$model\" --device cpu --shard {}/2 2> log.{}.first'" ::: 0 1 &
ppid=$!
# shard 1's items: 1, 3, 5, 7, 9, 11 -> wait for its first output, then kill it
shard1="out/item01.png out/item03.png out/item05.png out/item07.png out/item09.png out/item11.png"
killed=0
for _ in $(seq 1 1200); do
    n=0
    for f in $shard1; do [ -e "$f" ] && n=$((n + 1)); done
    if [ $n -ge 1 ] && [ -s pid.1 ]; then
        kill -KILL "$(cat pid.1)" 2>/dev/null && killed=1
        break
    fi
    sleep 0.1
done
wait $ppid
prc=$?
check '[ $killed = 1 ]' "shard 1 was not killed mid-way"
check '[ $prc -ne 0 ]' "parallel reported no failure although shard 1 was killed"
n1=0; for f in $shard1; do [ -e "$f" ] && n1=$((n1 + 1)); done
echo "shard 1 killed with $n1 of 6 outputs written"
check '[ $n1 -lt 6 ]' "shard 1 had finished before it was killed"

# restart shard 1 (as a Slurm requeue or a second 'parallel' run would)
parallel -j 1 "\"$inv\" batch m.jsonl --model \"$model\" --device cpu --shard {}/2 2> log.{}.restart" ::: 1
rrc=$?
check '[ $rrc = 0 ]' "the restarted shard exited with $rrc: $(tail -n 3 log.1.restart)"
check 'grep -q "skipped" log.1.restart' "the restart did not skip the outputs written before the kill"

# every output exactly once, complete, at its input's size; nothing else
got=$(cd "$work" && find out -type f | sort)
check '[ "$got" = "$expected" ]' "outputs differ from the expected set:
$(diff <(echo "$expected") <(echo "$got"))"
check '[ -z "$(find out -name "*.part")" ]' "temporary files left: $(find out -name '*.part')"
$py - <<'EOF' || fail=1
import json, sys
from PIL import Image
bad = 0
for line in open("m.jsonl"):
    if not line.strip() or line.startswith("#"):
        continue
    it = json.loads(line)
    n = len(it["target"]) if isinstance(it["target"], list) else 1
    size = Image.open(it["image"]).size
    for i in range(1, n + 1):
        path = it["output"].replace("%d", str(i))
        im = Image.open(path)
        im.load()  # decodes every row: a truncated file fails here
        if im.size != size:
            print(f"FAIL: {path} is {im.size}, its input {size}")
            bad = 1
sys.exit(bad)
EOF
# no output was edited twice (ok lines name the output), and each shard did only its own items
for f in $expected; do
    c=$(cat log.*.first log.*.restart | grep -c -- "-> $f: .*UNet passes")
    check '[ $c -le 1 ]' "$f was edited $c times"
done
check '! grep -qE "item (1|3|5|7|9|11)," log.0.first' "shard 0 ran an item of shard 1"
check '! grep -qE "item (0|2|4|6|8|10)," log.1.first log.1.restart' "shard 1 ran an item of shard 0"
check 'grep -q "ETA" log.0.first' "no ETA in the progress lines"

# a second full run skips everything; --force redoes an item
"$inv" batch m.jsonl --model "$model" --device cpu -q 2> log.again
check '[ $? = 0 ]' "a second run failed"
check 'grep -q "0 ok, 13 skipped" log.again' "a second run did not skip all 13 edits: $(tail -n 1 log.again)"

# failures: reported, the batch goes on, the exit status counts them
cat > bad.jsonl <<'EOF'
{"image": "missing.png", "source": "a", "target": "b", "output": "out/bad1.png"}
{"image": "in0.png", "source": "a", "target": "b", "output": "out/bad2.png", "steps": "many"}
not json at all
{"image": "in0.png", "source": "a red circle", "target": "a green circle", "output": "out/good.png", "steps": 4}
EOF
"$inv" batch bad.jsonl --model "$model" --device cpu 2> log.bad
brc=$?
check '[ $brc = 3 ]' "exit status $brc for 3 failed items"
check '[ -s out/good.png ]' "the good item after the failures did not run"
check 'grep -q "bad.jsonl:2: item 1: --steps" log.bad' "the bad parameter's line is not named"
check 'grep -q "bad.jsonl:3: item 2: not JSON" log.bad' "the non-JSON line is not named"
check 'grep -q "missing.png" log.bad' "the missing image is not reported"
"$inv" batch m.jsonl --shard 2/2 --model "$model" 2>/dev/null
check '[ $? = 2 ]' "--shard 2/2 accepted"

# output patterns: %03d, checked without a model (--dry-run)
echo '{"image": "in0.png", "source": "a", "target": ["b", "c"], "output": "out/p-%03d.png"}' > pat.jsonl
"$inv" batch pat.jsonl --dry-run > dry.txt 2>/dev/null
check 'grep -q "out/p-002.png" dry.txt' "--dry-run does not list out/p-002.png: $(cat dry.txt)"
echo '{"image": "in0.png", "source": "a", "target": ["b", "c"], "output": "out/q.png"}' > nopat.jsonl
"$inv" batch nopat.jsonl --dry-run 2> dry.err
check '[ $? = 1 ] && grep -q "need a pattern" dry.err' "two targets without a %d pattern were accepted"

# invedit edit with several targets: one inversion; the first output equals a one-target edit
src="a red circle on the left on a blue background"
"$inv" edit --model "$model" --device cpu --method ef-ddpm --steps 20 --image in0.png --source "$src" \
    --target "a yellow circle on the left on a blue background" \
    --target "a green circle on the left on a blue background" -o multi-%d.png --no-cache 2> log.multi
check '[ $? = 0 ] && [ -s multi-1.png ] && [ -s multi-2.png ]' "edit with two targets: $(tail -n 3 log.multi)"
check 'grep -q "multi-2.png: .*inversion from the cache" log.multi' "the second target did not reuse the inversion"
"$inv" edit --model "$model" --device cpu --method ef-ddpm --steps 20 --image in0.png --source "$src" \
    --target "a yellow circle on the left on a blue background" -o single.png --no-cache -q
check 'cmp -s single.png multi-1.png' "the first of two targets differs from the same edit alone"
check '! cmp -s multi-1.png multi-2.png' "two targets gave the same image"

if [ $fail != 0 ]; then
    for l in log.*; do echo "== $l"; tail -n 20 "$l"; done
    exit 1
fi
echo "batch: 2 shards under GNU parallel, one killed and restarted: 13 outputs, each once, complete"
exit 0
