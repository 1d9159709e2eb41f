source .device/env.sh && export LMBENCH_GIT_COMMIT=9a80079 && P=$OUT/probe && mkdir -p $P
timeout 150 python3 -m lmbench profile --size small --mode train-step --precision bf16 --ctx 512 --batch 4 --parallel ddp --nproc-per-node 1 --trace-dir /tmp/pr > $P/profile.log 2>&1; echo "profile rc $?" >> $P/profile.log
c=$(dirname $(ls /tmp/pr/*/*.pt.trace.json* | head -1)); cp $c/kernels.md $P/ 2>/dev/null
HTA_DISABLE_NS_ROUNDING=1 timeout 60 python3 benchmarks/hta_overlap.py $c > $P/hta_overlap.txt 2>&1; echo "rc $?" >> $P/hta_overlap.txt
python3 - "$c" > $P/comms_events.txt 2>&1 <<'PY'
import gzip, json, glob, sys
f = sorted(glob.glob(sys.argv[1] + "/*.pt.trace.json*"))[0]
d = json.load(gzip.open(f) if f.endswith(".gz") else open(f))
print("distributedInfo", d.get("distributedInfo"))
ev = d["traceEvents"]
comm = [e for e in ev if "Collective name" in (e.get("args") or {})]
print("events with Collective name:", len(comm))
for e in comm[:4]: print(json.dumps(e)[:600])
k = [e for e in ev if e.get("cat") == "kernel" and "nccl" in e.get("name", "").lower()]
print("nccl kernels:", len(k))
for e in k[:3]: print(json.dumps(e)[:600])
PY
timeout 120 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_distributed.py tests/test_distributed_profile.py > $P/pytest.log 2>&1; echo "rc $?" >> $P/pytest.log
tail -3 $P/pytest.log; cat $P/hta_overlap.txt; head -20 $P/comms_events.txt; grep -n -A8 "Communication" $P/kernels.md | head -20
