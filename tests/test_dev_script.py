"""scripts/dev.sh, the entry point behind `make` (its functions, sourced without running a command)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(
        f"import sys\nopen({str(tmp_path / (name + '.argv'))!r}, 'w').write(repr(sys.argv[1:]))\n"
    )
    return path


def test_make_bench_passes_the_scripts_arguments(tmp_path):
    # given: what `make bench BENCH="<script> --query-events 300000 <other> --seconds 2"` hands dev.sh
    make = subprocess.run(
        ["make", "-n", "bench", "BENCH=bench/ingest.py --query-events 300000"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "scripts/dev.sh bench bench/ingest.py --query-events 300000" in make.stdout
    first, second = _script(tmp_path, "first"), _script(tmp_path, "second")

    # when
    subprocess.run(
        ["bash", "-c", 'source scripts/dev.sh && PY="$1" && shift && bench_scripts "$@"', "_", sys.executable,
         str(first), "--query-events", "300000", str(second), "--seconds", "2"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip

    # then: each script ran once with its own arguments
    assert (tmp_path / "first.argv").read_text() == "['--query-events', '300000']"
    assert (tmp_path / "second.argv").read_text() == "['--seconds', '2']"


def test_make_bench_refuses_arguments_without_a_script():
    result = subprocess.run(
        ["bash", "-c", "source scripts/dev.sh && bench_scripts --query-events 300000"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert "not a bench script" in result.stderr
