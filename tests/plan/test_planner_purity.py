"""The planner is pure: it cannot reach the network or the clock, so it is tested without a server."""

from __future__ import annotations

import subprocess
import sys


def test_planner_imports_no_http_client_and_no_sandbox() -> None:
    code = (
        "import sys, provena_ops.plan.planner; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'httpx', 'fastapi', 'uvicorn', 'sqlite3'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
