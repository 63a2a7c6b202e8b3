"""One regeneration command: `python -m blockstitch.regenerate --check` names every stale generated artifact —
the block index, schema and zoo table (by digest) and the library pages and README zoo regions (by content)."""

from __future__ import annotations

from pathlib import Path

from blockstitch import regenerate


def test_every_generated_artifact_is_current() -> None:
    old = regenerate.stale() + regenerate.stale_pages()
    assert not old, f"stale: {[p.name for p in old]} — run `python -m blockstitch.regenerate` and commit them"


def test_pages_rewrite_a_readme_zoo_region(tmp_path: Path, monkeypatch) -> None:
    import blockstitch.generated as generated

    (tmp_path / "blockstitch").mkdir()
    start, end = regenerate.ZOO_REGION
    (tmp_path / "README.md").write_text(f"intro\n{start}\nan old table\n{end}\noutro\n", encoding="utf-8")
    monkeypatch.setattr(generated, "PACKAGE", tmp_path / "blockstitch")
    rows = [{"name": "tiny", "input": "3×8×8", "params": 10, "gmacs": 0.001, "description": "a row"}]
    text = regenerate.pages(rows)[tmp_path / "README.md"]
    assert text.startswith(f"intro\n{start}\n") and text.endswith(f"\n{end}\noutro\n")
    assert "an old table" not in text and "tiny" in text
