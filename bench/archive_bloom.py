"""A workflow's events from the archive at 10 events/s: Parquet day files with and without a
Bloom filter on workflow_id (data/archive_move.py writes one), looked up with DuckDB as
data/archive.py does. Synthetic rows (864,000 a day, 40,000 workflows, 15 types, sorted like
the archive's parts), 10 days; a looked-up workflow is on one of them.

    .venv/bin/python bench/archive_bloom.py
"""
import os, time, random, tempfile, shutil
import pyarrow as pa, pyarrow.parquet as pq, duckdb
random.seed(1)
N = 864_000
types = [f"workflow.t{i}" for i in range(15)]
rows = sorted(((random.choice(types), 1_700_000_000_000 + random.randrange(86_400_000), f"id-{i:08d}", f"WF-{random.randrange(40_000):06d}") for i in range(N)))
body = b'{"id":"x","type":"workflow.quality_gate_executed","timestamp":"2026-11-28T15:00:00.000Z","source":"qms-simulator","data":{"workflow_id":"WF-11-261128150000-316","gate_name":"security","passed":true}}'
t = pa.table({"id": [r[2] for r in rows], "type": [r[0] for r in rows], "ts": pa.array([r[1] for r in rows], pa.int64()),
              "workflow_id": [r[3] for r in rows], "agent_id": [None]*N, "reviewer": [None]*N, "found_by": [None]*N,
              "e": pa.array([body]*N, pa.binary())})
d = tempfile.mkdtemp(prefix="bloom-")
COPIES = 10
for kind in ("plain", "bloom"):
    files = []
    for c in range(COPIES):
        p = os.path.join(d, f"{kind}-{c}.parquet")
        kw = {"bloom_filter_options": {"workflow_id": {"ndv": 50_000, "fpp": 0.05}}} if kind == "bloom" else {}
        # copy c holds other workflows: shift ids so a looked-up id is absent from 9 of 10 days
        tc = t.set_column(3, "workflow_id", pa.array([f"{w}-{c}" for w in t.column("workflow_id").to_pylist()])) if c else t
        pq.write_table(tc, p, compression="zstd", compression_level=6, row_group_size=50_000, **kw)
        files.append(p)
    size = sum(os.path.getsize(f) for f in files)
    con = duckdb.connect()
    lst = "[" + ",".join(f"'{f}'" for f in files) + "]"
    took = []
    for w in range(0, 40_000, 4000):
        s = time.perf_counter()
        con.execute(f"SELECT id, ts, e FROM read_parquet({lst}) WHERE workflow_id = ? ORDER BY ts DESC", [f"WF-{w:06d}"]).fetchall()
        took.append(time.perf_counter() - s)
    took.sort()
    print(kind, f"{size/1e6:.1f} MB for {COPIES} days; lookup median {1000*took[len(took)//2]:.0f} ms max {1000*took[-1]:.0f} ms")
shutil.rmtree(d)
