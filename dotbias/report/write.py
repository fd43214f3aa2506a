"""The report's files: a benchmark summary or the cross-version table turned into markdown, JSON
and PNGs, every file rendered before the first is written."""
from __future__ import annotations

from pathlib import Path

from dotbias.io.files import write_bytes, write_json, write_text
from dotbias.report import markdown, versions
from dotbias.report.plots import cross_version_plot, png_bytes, render_plots
from dotbias.report.summary import load_run, summarise


def write_report(paths: list[Path], out_dir: Path) -> str:
    """Read `paths`, write REPORT.md, report.json and PNG plots into `out_dir`; return the summary
    text. Every input is read and every output rendered before the first file is written."""
    if not paths:
        raise ValueError("no benchmark runs given")
    summary = summarise([load_run(p) for p in paths])
    text = markdown.render_markdown(summary)
    pngs = {name: png_bytes(fig) for name, fig in render_plots(summary).items()}
    out_dir = Path(out_dir)
    written = [write_text(out_dir / "REPORT.md", text),
               write_json(out_dir / "report.json", markdown.summary_json(summary))]
    written += [write_bytes(out_dir / name, data) for name, data in pngs.items()]
    return markdown.render_text(summary) + "\nwrote " + ", ".join(str(p) for p in written)


def write_versions_report(folder: str | Path, out_dir: str | Path) -> str:
    """Read every run under `folder`, write CROSS_VERSION.md, cross_version.json and
    cross_version.png into `out_dir` (all rendered before the first write); return the table."""
    summary = versions.summarise_versions(versions.collect(folder))
    md, png = versions.render_markdown(summary), cross_version_plot(summary)
    out_dir = Path(out_dir)
    written = [write_text(out_dir / "CROSS_VERSION.md", md),
               write_json(out_dir / "cross_version.json", summary.as_json()),
               write_bytes(out_dir / "cross_version.png", png)]
    return md + "\nwrote " + ", ".join(str(p) for p in written)
