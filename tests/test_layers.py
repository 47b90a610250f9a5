"""Dependencies point one way: the pure engine never pulls in the web, database or queue stack."""

import subprocess
import sys

HEAVY = ("flask", "sqlalchemy", "celery", "flask_babel", "kombu")


def test_importing_the_engine_loads_no_web_database_or_queue_library() -> None:
    code = (
        "import sys, pkgutil, importlib, matchmaking.matching as m\n"
        "for info in pkgutil.iter_modules(m.__path__):\n"
        "    importlib.import_module('matchmaking.matching.' + info.name)\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
