"""Man pages: generated from the command tree, and man/ kept in sync."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import pytest
import typer

from mailgw.cli.manpage import escape, main, render_pages

MAN_DIR = Path(__file__).resolve().parents[2] / "man"
HINT = "man pages are out of date: run python -m mailgw.cli.manpage --out man/"


def test_man_directory_is_in_sync(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    generated = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.1")}
    shipped = {p.name: p.read_text(encoding="utf-8") for p in MAN_DIR.glob("*.1")}
    assert sorted(generated) == sorted(shipped), HINT
    for name, text in generated.items():
        assert shipped[name] == text, f"{name}: {HINT}"


def test_real_pages_cover_every_command(tmp_path: Path) -> None:
    main(["--out", str(tmp_path)])
    top = (tmp_path / "mailgw.1").read_text()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "GLOBAL OPTIONS", "COMMANDS"):
        assert f'.SH "{section}"' in top or f".SH {section}" in top
    for section in ("EXIT STATUS", "ENVIRONMENT", "FILES", "SEE ALSO"):
        assert f'.SH "{section}"' in top
    for var in ("MAILGW_CONFIG", "MAILGW_DATA", "MAILGW_PASSWORD"):
        assert f"\\fB{var}\\fR" in top
    assert "\\fB\\-\\-config\\fR" in top
    config_page = (tmp_path / "mailgw-config.1").read_text()
    assert '.SS "mailgw config check"' in config_page
    assert '.SS "mailgw config example"' in config_page
    assert "mailgw-config(1)" in top.replace("\\-", "-").replace("\\fB", "").replace("\\fR", "")


def test_stale_pages_are_removed(tmp_path: Path) -> None:
    (tmp_path / "mailgw-gone.1").write_text("old")
    (tmp_path / "README").write_text("keep")
    main(["--out", str(tmp_path)])
    assert not (tmp_path / "mailgw-gone.1").exists()
    assert (tmp_path / "README").exists()


# --- the generator on a small tree of its own --------------------------------

EPILOG = "Exit codes: 0 fine; 1 broken; 2 bad usage."


def _toy_app() -> typer.Typer:
    app = typer.Typer(help="Toy tool.", epilog=EPILOG, rich_markup_mode=None, add_completion=False)
    group = typer.Typer(help="Manage widgets.", rich_markup_mode=None)

    @app.callback()
    def _root(
        config: Annotated[str, typer.Option("--config", "-c", help="The file.")] = "x",
    ) -> None:
        """Toy tool."""

    @group.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="Widget name.")],
        force: Annotated[bool, typer.Option("--force", help="Overwrite a \\ backslash.")] = False,
    ) -> None:
        """Add a widget.

        .starts with a dot, and -dashes-.

        \b
          keep   these
          lines  apart
        \f
        Internal notes not shown.
        """

    @group.command("list", hidden=True)
    def secret() -> None:
        """Hidden."""

    @app.command("run")
    def run(files: Annotated[list[str] | None, typer.Argument()] = None) -> None:
        """Run it."""

    app.add_typer(group, name="widget")
    return app


def test_render_toy_tree() -> None:
    pages = render_pages(typer.main.get_command(_toy_app()), version="9.9")
    assert sorted(pages) == ["mailgw-run.1", "mailgw-widget.1", "mailgw.1"]
    widget = pages["mailgw-widget.1"]
    assert '.TH "MAILGW-WIDGET" "1" "mailgw 9.9"' in widget
    assert "mailgw\\-widget \\- Manage widgets" in widget
    assert '.SS "mailgw widget add"' in widget
    assert "[\\fIOPTIONS\\fR] \\fINAME\\fR" in widget
    assert "\\fB\\-\\-force\\fR" in widget
    assert "Overwrite a \\e backslash." in widget
    assert "\n\\&.starts with a dot, and \\-dashes\\-." in widget
    assert ".nf\n  keep   these\n  lines  apart\n.fi" in widget
    assert "Internal notes" not in widget
    assert "Hidden" not in widget and "widget list" not in widget
    assert ".TP\n\\fB2\\fR\nbad usage" in widget
    run = pages["mailgw-run.1"]
    assert "\\fBrun\\fR [\\fIFILES\\fR...]" in run
    top = pages["mailgw.1"]
    assert "\\fB\\-c\\fR, \\fB\\-\\-config\\fR" in top
    assert ".TP\n\\fBwidget\\fR\nManage widgets. See mailgw\\-widget(1)." in top
    # deterministic: same tree, same text
    assert render_pages(typer.main.get_command(_toy_app()), version="9.9") == pages


def test_escape() -> None:
    assert escape("a-b") == "a\\-b"
    assert escape("'quote\n.dot") == "\\&'quote\n\\&.dot"
    assert escape('say "hi" \\') == "say \\(dqhi\\(dq \\e"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_groff_renders_without_warnings(tmp_path: Path) -> None:
    main(["--out", str(tmp_path)])
    pages = render_pages(typer.main.get_command(_toy_app()))
    for name, text in pages.items():
        (tmp_path / f"toy-{name}").write_text(text)
    for page in sorted(tmp_path.glob("*.1")):
        proc = subprocess.run(
            ["groff", "-man", "-Tutf8", "-ww", "-z", str(page)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0 and proc.stderr == "", f"{page.name}: {proc.stderr}"
