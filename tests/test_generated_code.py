"""The committed generated code is exactly what `python -m tools.gen_protos` produces."""

from __future__ import annotations

import filecmp
from pathlib import Path

from tools.gen_protos import ROOT, generate


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed_dir = ROOT / "service"
    committed = sorted(
        p.relative_to(committed_dir)
        for p in (committed_dir / "claudebench" / "v1").glob("*_pb2*")
        if p.is_file()
    )
    assert fresh == committed
    stale = [str(p) for p in fresh if not filecmp.cmp(tmp_path / p, committed_dir / p, shallow=False)]
    assert not stale, f"regenerate with `python -m tools.gen_protos`: {stale} differ"


def test_script_reference_is_up_to_date() -> None:
    from tools.gen_docs import KEYSPACE, OUTPUT, render, render_keyspace

    assert OUTPUT.read_text() == render(), "regenerate with `python -m tools.gen_docs`"
    assert KEYSPACE.read_text() == render_keyspace(), "regenerate with `python -m tools.gen_docs`"
