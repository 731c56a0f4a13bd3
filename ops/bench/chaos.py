"""The long chaos run: `python ops/bench/chaos.py [--minutes 30] [--seed 1] [--out FILE]`.

Hundreds of seeded faults against the default paper portfolio (see ops/chaos.py); writes the
report as JSON (default ops/bench/results/chaos-<minutes>m-seed<seed>.json) and exits 1 on any
invariant violation. CI runs a 90-second version (tests/integration/test_chaos.py) and a short
in-process one with issue 10's fault kinds (tests/integration/test_chaos_faults.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from ops.chaos import ChaosRun
from ops.chaos_schedule import FAULT_KINDS

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-minute", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or RESULTS / f"chaos-{args.minutes:g}m-seed{args.seed}.json"
    work = Path(tempfile.mkdtemp(prefix="raytrader-chaos-bench-"))
    report = ChaosRun(args.seed, args.minutes * 60.0, FAULT_KINDS, work, per_minute=args.per_minute).run()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.as_dict(), indent=2))
    print(json.dumps({k: v for k, v in report.as_dict().items() if k != "invariants"}, indent=2))
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
