"""Starts the BigQuery upstream the suite's second pass uses — bqemulator
seeded with the demo tables, and the local token service — for a suite
that starts its own gateway (the Node suite). It writes the gateway
configuration that forwards to them, prints

    config /path/to/sluice-bqemulator.yaml

and keeps both running until SIGTERM or SIGINT.

The token service trusts Sluice's issuer alone, with the keys in the
`trusted-jwks` folder beside the configuration. A gateway started on the
configuration has a store, and so a signing key, of its own: export its
JWKS there before it serves, as an operator hands a pool provider the
file — `sluice secrets jwks --config CONFIG --data-dir DATA --out
CONFIG_DIR/trusted-jwks/NAME.json` (node/lib/sluice.js does).

    SLUICE_BIN=... BQEMULATOR_PYTHON=... python upstream_stack.py
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("SLUICE_E2E_UPSTREAM", "bqemulator")

from conftest import _upstream_config  # noqa: E402


def main() -> None:
    binary = os.environ.get("SLUICE_BIN")
    if not binary:
        raise SystemExit("SLUICE_BIN is not set")
    work_dir = Path(tempfile.mkdtemp(prefix="sluice-upstream-stack-"))
    config, helpers = _upstream_config(work_dir, binary)

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"config {config}", flush=True)
    try:
        while True:
            signal.pause()
    finally:
        for helper in helpers:
            helper.stop()
        shutil.rmtree(work_dir / "upstream-tables", ignore_errors=True)
        print("upstream stack stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
