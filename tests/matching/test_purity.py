import subprocess
import sys


def test_engine_imports_no_web_stack() -> None:
    code = (
        "import sys\n"
        "import matchmaking.matching.engine, matchmaking.matching.taxonomy, matchmaking.matching.text\n"
        "import matchmaking.matching.scoring, matchmaking.matching.geo, matchmaking.matching.quantities\n"
        "import matchmaking.matching.evaluate, matchmaking.matching.bench\n"
        "bad = [m for m in ('flask', 'sqlalchemy', 'celery') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
