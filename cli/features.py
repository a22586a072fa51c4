"""``caselens features``: build point-in-time case features, list them, regenerate their documentation."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.progress import progress_bar
from pipelines.scheduler import SCHEDULER_HELP, scheduler_address
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
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
) -> None:
    """Compute the features of every case in the store, each from what was known at its STAGE.

    Category levels are learned on the whole store here; models learn them on their training split.
    On a Dask cluster (--scheduler) the cases are shuffled by patient, each partition is computed on
    its own and OUTPUT is a Parquet folder, one file per partition (same rows, in another order).
    """
    address = scheduler_address(scheduler)
    if address is not None:
        _build_on_cluster(address, output, stage, store, min_category_count)
        return
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


def _build_on_cluster(
    address: str, output: Path, stage: str, store: Path | None, min_category_count: int
) -> None:
    from pipelines.cluster import connect
    from pipelines.cluster_features import build_features

    with connect(address) as client, progress_bar() as bar:
        task = bar.add_task(f"{stage} features on the Dask cluster", total=1)
        found = build_features(client, output, stage, store_dir=store, min_category_count=min_category_count)
        bar.advance(task)
    kinds = found.features.catalog["kind"].value_counts()
    console.print(
        f"[green]{found.rows:,} cases[/green] x {len(found.features.feature_names_out_)} features "
        f"({kinds.get('numeric', 0)} numeric, {kinds.get('categorical', 0)} categorical), "
        f"{found.partitions} partitions -> {output}/part.*.parquet"
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
