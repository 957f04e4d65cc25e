"""The generated references (docs/reference/config.md, cli.md) match the code, every config key is described,
CI runs the README's test command, and every relative link in README.md and docs/ resolves.

    python -m pytest -q tests/test_docs_reference.py      # seconds; regenerate the pages with: python -m madbench.docs_gen
"""

from __future__ import annotations

import dataclasses

import pytest

from madbench import docs_gen
from madbench.config import key_docs


def test_every_config_key_has_a_description():
    missing = docs_gen.undocumented()
    assert not missing, f"describe these keys in madbench/config/key_docs.py: {', '.join(missing)}"


def test_committed_references_match_the_code():
    bad = docs_gen.stale()
    assert not bad, f"{', '.join(bad)} out of date; run: python -m madbench.docs_gen"


def test_a_key_without_a_description_is_caught(monkeypatch):
    docs = dict(key_docs.KEY_DOCS)
    del docs["sampling.top_p"]
    docs["sampling.top_q"] = ("a key that does not exist", "")
    monkeypatch.setattr(key_docs, "KEY_DOCS", docs)
    assert docs_gen.undocumented() == ["sampling.top_p", "sampling.top_q (no such key)"]


def test_the_config_page_follows_the_dataclasses_and_bounds(monkeypatch):
    """Type, default and upper bound in the page come from the code: change them there and the page changes."""
    from madbench.config import limits, run_config

    row = next(line for line in docs_gen.config_markdown().splitlines() if line.startswith("| `loop.generations`"))
    assert row.split(" | ")[1:4] == ["int", "`5`", ">= 0; at most 1,000"]
    monkeypatch.setattr(limits, "BOUNDS", {**limits.BOUNDS, "loop.generations": 7})
    monkeypatch.setattr(run_config, "LoopConfig", dataclasses.make_dataclass(
        "LoopConfig", [("generations", int, dataclasses.field(default=9))], frozen=True))
    page = docs_gen.config_markdown()  # RunConfig's annotations name LoopConfig: resolved anew from the module
    assert "| `loop.generations` | int | `9` | >= 0; at most 7 |" in page
    assert "`loop.seeds`" not in page


def test_a_stale_page_is_reported_with_the_command(tmp_path, capsys, monkeypatch):
    for rel, text in docs_gen.generated().items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    assert docs_gen.stale(tmp_path) == []
    cli = tmp_path / docs_gen.CLI_MD
    cli.write_text(cli.read_text().replace("--dry-run", "--dry-runn", 1), encoding="utf-8")
    assert docs_gen.stale(tmp_path) == [str(docs_gen.CLI_MD)]
    monkeypatch.setattr(docs_gen, "ROOT", tmp_path)
    assert docs_gen.main(["--check"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"docs_gen: {docs_gen.CLI_MD} out of date; run: python -m madbench.docs_gen"


@pytest.mark.parametrize("verb", ["run", "sweep", "regress", "bench"])
def test_the_cli_page_lists_every_option_of_the_parser(verb):
    from madbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices[verb]
    page = docs_gen.cli_markdown()
    section = page.split(f"## madbench {verb}\n", 1)[1].split("\n## ", 1)[0]
    for action in sub._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert f"`{flag}`" in section, f"{flag} of madbench {verb} missing from the CLI page"


def test_ci_runs_exactly_the_readmes_test_command():
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run the tests", 1)[1]
    command = section.split("```bash\n", 1)[1].split("\n", 1)[0]
    assert command == "bash scripts/setup.sh && .venv/bin/python -m pytest -q -n 2 tests"
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if not line.startswith("#")]
    assert any(line.startswith(command + " ") or line == command for line in ci), f".ci/run does not run: {command}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    import re

    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_in_the_readme_and_docs_resolves():
    import re

    from conftest import ROOT

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(#[^)\s]*)?\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and path.suffix == ".md":
                heads = {_anchor(line.lstrip("#")) for line in path.read_text(encoding="utf-8").splitlines()
                         if line.startswith("#")}
                if anchor[1:] not in heads:
                    broken.append(f"{page.relative_to(ROOT)}: {target}{anchor}")
    assert not broken, "broken links: " + "; ".join(broken)
