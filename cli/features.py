"""``caselens features``: build point-in-time case features, list them, regenerate their documentation."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.progress import progress_bar
from pipelines.store import read_cases

console = Console()
app = typer.Typer(help="Point-in-time case features (see docs/features.md).", no_args_is_help=True)
STAGE_HELP = "admission (known at admission) or discharge (adds the coded abstract, DRG and charges)"


@app.command("build")
def build(
    output: Path = typer.Option(..., "-o", "--output", help="Parquet file to write (case_id + features)"),
    stage: str = typer.Option("admission", "--stage", help=STAGE_HELP),
    store: Path | None = typer.Option(None, "--store", help="case store folder (default: configured)"),
    min_category_count: int = typer.Option(20, "--min-category-count", help="rarer levels become 'other'"),
) -> None:
    """Compute the features of every case in the store, each from what was known at its STAGE.

    Category levels are learned on the whole store here; models learn them on their training split.
    """
    from features.pipeline import CaseFeatures  # here: scikit-learn would slow every command's start

    with progress_bar() as bar:
        task = bar.add_task(f"{stage} features", total=3)
        cases = read_cases(store)
        bar.advance(task)
        features = CaseFeatures(stage, min_category_count=min_category_count)
        table = features.fit_transform(cases)
        bar.advance(task)
        output.parent.mkdir(parents=True, exist_ok=True)
        table.insert(0, "case_id", cases["case_id"].to_numpy())
        table.to_parquet(output, index=False)
        bar.advance(task)
    kinds = features.catalog["kind"].value_counts()
    console.print(
        f"[green]{len(table):,} cases[/green] x {table.shape[1] - 1} features "
        f"({kinds.get('numeric', 0)} numeric, {kinds.get('categorical', 0)} categorical) -> {output}"
    )


@app.command("catalog")
def catalog(stage: str = typer.Option("discharge", "--stage", help=STAGE_HELP)) -> None:
    """List the features of a stage with their view, sources and names."""
    from features.pipeline import CaseFeatures

    frame = CaseFeatures(stage).catalog
    table = Table("feature", "view", "stage", "kind", "sources", "中文", "English")
    for row in frame.itertuples(index=False):
        table.add_row(row.feature, row.view, row.stage, row.kind, row.sources, row.zh, row.en)
    console.print(table)


@app.command("docs")
def docs(
    path: Path | None = typer.Option(
        None, "--path", help="the markdown file with the generated section [default: docs/features.md]"
    ),
) -> None:
    """Regenerate the feature table of docs/features.md from the registered views."""
    from features.docs import DOCS_PATH, write_docs

    path = path or DOCS_PATH
    changed = write_docs(path)
    console.print(f"{path}: {'updated' if changed else 'already up to date'}")
