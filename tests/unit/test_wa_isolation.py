"""app/whatsapp is a standalone library: importing it must not pull in the web stack or our models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = [path.stem for path in (ROOT / "app" / "whatsapp").glob("*.py") if path.stem != "__init__"]


def test_whatsapp_package_imports_no_litestar_beanie_or_domains():
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}: importlib.import_module('app.whatsapp.' + name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('litestar', 'beanie', 'motor')"
        " or m.startswith('app.') and not m.startswith('app.whatsapp'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert len(MODULES) >= 10
    assert result.stdout.strip() == ""
