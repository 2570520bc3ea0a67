"""Before/after in one run: `benchmarks.generate`'s own child (our engine, the full 8 bars x 4
request on the bundled folk tune and chorale) alternating between two checkouts, same seeds,
the order flipped every round; prints each round and then per case the median time of each
side, the median new/old ratio, and whether both sides drew the same tokens.

    git worktree add /tmp/old <rev>
    python -m benchmarks.before_after /tmp/old . 4 5     # OLD NEW ROUNDS RUNS-PER-ROUND
"""

import json
import os
import statistics
import subprocess
import sys

OLD, NEW = sys.argv[1], sys.argv[2]
rounds, runs = int(sys.argv[3]), int(sys.argv[4])
res = {c: {"old": [], "new": [], "tok_same": True, "first_old": [], "first_new": []} for c in ("a-folk", "b-chorale")}
for r in range(rounds):
    for case in res:
        toks = {}
        for side, root in (("old", OLD), ("new", NEW)) if r % 2 == 0 else (("new", NEW), ("old", OLD)):
            env = dict(os.environ, PYTHONPATH=root)
            out = subprocess.run([sys.executable, "-m", "benchmarks.generate", "--child", "--engine", "ours",
                                  "--case", case, "--runs", str(runs), "--model", "default"],
                                 cwd=root, env=env, capture_output=True, text=True, check=True).stdout
            d = json.loads([x for x in out.splitlines() if x.startswith("RESULT ")][-1][7:])
            res[case][side].append(statistics.median(d["times"]))
            res[case]["first_" + side].append(statistics.median(d["first_bar"]))
            toks[side] = d["tokens"]
        res[case]["tok_same"] &= toks["old"] == toks["new"]
        print(case, r, {k: round(v[-1], 4) for k, v in res[case].items() if isinstance(v, list)}, flush=True)
for case, d in res.items():
    ratios = [n / o for n, o in zip(d["new"], d["old"])]
    print(json.dumps({"case": case, "old_median_s": statistics.median(d["old"]),
                      "new_median_s": statistics.median(d["new"]),
                      "new_over_old_median": statistics.median(ratios), "per_round": [round(x, 3) for x in ratios],
                      "first_bar_ratio": statistics.median(n / o for n, o in zip(d["first_new"], d["first_old"])),
                      "same_tokens": d["tok_same"]}))
