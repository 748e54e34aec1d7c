"""Exports of a reader study: every read as one tidy long-format table, and the statistics as a table.

**Reads** (``reads.csv``, or the ``reads`` sheet of the XLSX): one row per reader x case x level x item
x phase of each assignment's newest submitted read per phase (and each assignment's newest mask
version per phase), so R's ``read.csv`` or pandas' ``read_csv`` gives an analysable data frame without
reshaping. Grades and measurements share the table -- one file to load, one key -- and are told apart
by ``item_type``:

============== =====================================================================================
column         meaning
============== =====================================================================================
study          reader study slug
case           case label; ``case_id`` its UUID (labels are not unique across studies)
calibration    ``true`` for calibration cases (kept out of the statistics; filter them out too)
reader         username of the reader
kind           assignment kind: ``live``, ``washout`` (re-read after the washout), ``calibration``
phase          ``unaided`` or ``aided`` (two-phase studies: the read after seeing the AI)
version        the read version (for ``mask`` rows: the mask version)
submitted_at   ISO 8601 UTC time of that version
reading_s      cumulative reading time of the phase in seconds (empty for masks)
item_type      ``grade``, ``measurement`` (drawn by the reader) or ``mask`` (from the reader's mask)
level          disc level, e.g. ``L4-L5``
item           grade: the condition key; measurement: ``<key>.<field>`` (``dsca.area_mm2``,
               ``disc_height.middle_mm``); mask: ``mask.<quantity>`` for every number measured from
               the reader's mask at the level (``mask.dsca_mm2``, ``mask.ap_diameter_mm``,
               ``mask.muscle_fat_fraction_left_percent``, ...)
grade          the category code (grade rows only)
grade_rank     its 0-based position in the protocol's fixed ordered category list (grade rows only)
value          the number (measurement and mask rows only), in ``unit``
unit           ``mm``, ``mm2`` or ``%`` (measurement and mask rows only)
============== =====================================================================================

Rows are ordered by case label, case id, reader, kind, phase, then the read's grades (protocol order of
levels and conditions), then its measurements; mask rows follow all reads. Empty cells are missing
values (``NA`` in R, ``NaN`` in pandas). Numbers are written as Python's shortest round-trip ``repr``.

**Statistics** (``statistics.csv``): one row per statistic of the report, long format, with the
columns of :data:`STATISTICS_COLUMNS`; ``statistics.json`` is the report itself.

Everything is produced by generators, so a study of any size is streamed in chunks.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from openpyxl import Workbook

from spinereview.ai.selectors import model_version_for_reader_study
from spinereview.morphometry import AXIAL_QUANTITIES, SAGITTAL_QUANTITIES
from spinereview.reports.analysis import quantity_unit
from spinereview.reports.selectors import (
    ai_level_rows,
    grades_by_read,
    masks_latest,
    measurement_quantities,
    measurements_by_read,
    reference_grades,
    submitted_reads_latest,
)
from spinereview.studies.models import ReaderStudy
from spinereview.studies.protocols import condition_categories

READ_COLUMNS = (
    "study", "case", "case_id", "calibration", "reader", "kind", "phase", "version", "submitted_at", "reading_s",
    "item_type", "level", "item", "grade", "grade_rank", "value", "unit",
)  # fmt: skip
STATISTICS_COLUMNS = ("section", "phase", "condition", "level", "rater_a", "rater_b", "statistic", "estimate", "ci_low", "ci_high", "n")
READS_PER_CHUNK = 2000
ROWS_PER_CSV_CHUNK = 500

Cell = str | int | float | None


MASK_QUANTITIES = AXIAL_QUANTITIES + SAGITTAL_QUANTITIES
"""The numbers exported per level from each reader mask, in this order."""


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def read_rows(*, reader_study: ReaderStudy) -> Iterator[tuple[Cell, ...]]:
    """The rows of the reads table (without the header), in chunks of reads from the database."""
    protocol = reader_study.protocol
    level_order = {level: i for i, level in enumerate(protocol["levels"])}
    condition_keys = [c["key"] for c in protocol["conditions"]] + [s["key"] for c in protocol["conditions"] for s in c.get("sub_questions", [])]
    condition_order = {key: i for i, key in enumerate(condition_keys)}
    ranks = {key: {code: i for i, code in enumerate(condition_categories(protocol, key))} for key in condition_keys}
    reads = submitted_reads_latest(reader_study=reader_study)
    slug = reader_study.slug
    head: tuple[Cell, ...]
    for start in range(0, len(reads), READS_PER_CHUNK):
        chunk = reads[start : start + READS_PER_CHUNK]
        grades = grades_by_read(r.read_version_id for r in chunk)
        measurements = measurements_by_read(r.read_version_id for r in chunk)
        for read in chunk:
            head = (
                slug, read.case_label, str(read.case_id), "true" if read.is_calibration else "false", read.reader, read.kind, read.phase,
                read.version, _timestamp(read.submitted_at), read.elapsed_s,
            )  # fmt: skip
            ordered = sorted(grades.get(read.read_version_id, []), key=lambda g: (level_order.get(g[0], 99), g[0], condition_order.get(g[1], 99), g[1]))
            for level, condition, value in ordered:
                rank = ranks.get(condition, {}).get(value)
                yield (*head, "grade", level, condition, value, rank, None, None)
            rows = [(level, quantity, number) for key, level, values in measurements.get(read.read_version_id, []) for quantity, number in measurement_quantities(key, values)]
            for level, quantity, number in sorted(rows, key=lambda m: (level_order.get(m[0], 99), m[0], m[1], m[2])):
                yield (*head, "measurement", level, quantity, None, None, number, quantity_unit(quantity))
    for mask in masks_latest(reader_study=reader_study):
        head = (
            slug, mask.case_label, str(mask.case_id), "true" if mask.is_calibration else "false", mask.reader, mask.kind, mask.phase,
            mask.version, _timestamp(mask.saved_at), None,
        )  # fmt: skip
        for row in sorted(mask.level_measurements, key=lambda r: level_order.get(r["level"], 99)):
            for quantity in MASK_QUANTITIES:
                if row.get(quantity) is not None:
                    yield (*head, "mask", row["level"], f"mask.{quantity}", None, None, float(row[quantity]), quantity_unit(quantity))


def _csv_cell(value: Cell) -> str | int:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def csv_stream(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> Iterator[bytes]:
    """UTF-8 CSV (RFC 4180, ``\\r\\n`` line ends, minimal quoting) in chunks of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow([_csv_cell(v) for v in row])
        if count % ROWS_PER_CSV_CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def xlsx_write(sheets: Mapping[str, tuple[Sequence[str], Iterable[Sequence[Cell]]]], out: IO[bytes]) -> None:
    """An XLSX workbook with one sheet per entry, written row by row (openpyxl write-only mode: memory
    does not grow with the study)."""
    workbook = Workbook(write_only=True)
    for name, (header, rows) in sheets.items():
        sheet = workbook.create_sheet(title=name)
        sheet.append(list(header))
        for row in rows:
            sheet.append(["" if v is None else v for v in row])
    workbook.save(out)


def _ci_rows(section: str, base: dict[str, Any], statistic: str, value: Mapping[str, Any] | None, n: int | None) -> Iterator[tuple[Cell, ...]]:
    if value is None:
        return
    yield (section, base.get("phase"), base.get("condition"), base.get("level"), base.get("rater_a"), base.get("rater_b"), statistic,
           value.get("estimate"), value.get("ci_low"), value.get("ci_high"), n)  # fmt: skip


def _scalar(section: str, base: dict[str, Any], statistic: str, value: Any, n: int | None) -> Iterator[tuple[Cell, ...]]:
    yield from _ci_rows(section, base, statistic, {"estimate": value}, n)


def statistics_rows(report: Mapping[str, Any]) -> Iterator[tuple[Cell, ...]]:
    """The report as a long table: one row per (comparison, statistic) with its CI where it has one."""
    for p in report["pairwise"]:
        for weights in ("none", "linear", "quadratic"):
            yield from _ci_rows("pairwise", p, f"kappa_{weights}", p["kappa"][weights], p["n"])
        yield from _scalar("pairwise", p, "percent_agreement", p["percent_agreement"], p["n"])
    for m in report["multirater"]:
        base = m | {"rater_a": "all readers"}
        for statistic in ("fleiss_kappa", "krippendorff_alpha_ordinal", "gwet_ac2_quadratic", "mean_pairwise_kappa_quadratic"):
            yield from _scalar("multirater", base, statistic, m[statistic], m["n_items"])
    for r in report["vs_reference"]:
        base = r | {"level": "all", "rater_a": r["rater"], "rater_b": "reference"}
        for weights in ("none", "linear", "quadratic"):
            yield from _ci_rows("vs_reference", base, f"kappa_{weights}", r["kappa"][weights], r["n"])
        for statistic in ("percent_agreement", "accuracy", "macro_f1"):
            yield from _scalar("vs_reference", base, statistic, r[statistic], r["n"])
        for c in r["per_class"]:
            yield from _scalar("vs_reference", base, f"f1[{c['category']}]", c["f1"], c["reference_count"])
    for r in report["intra_reader"]:
        base = r | {"phase": "unaided", "level": "all", "rater_a": r["reader"], "rater_b": f"{r['reader']} (washout)"}
        for weights in ("none", "linear", "quadratic"):
            yield from _ci_rows("intra_reader", base, f"kappa_{weights}", r["kappa"][weights], r["n"])
        yield from _scalar("intra_reader", base, "percent_agreement", r["percent_agreement"], r["n"])
    for r in report["aided_vs_unaided"]:
        base = r | {"phase": "aided vs unaided", "level": "all", "rater_a": r["reader"], "rater_b": r["reader"]}
        yield from _ci_rows("aided_vs_unaided", base, "kappa_quadratic_between_phases", r["kappa_between_phases"]["quadratic"], r["n"])
        yield from _scalar("aided_vs_unaided", base, "changed_items", r["changed"], r["n"])
    for c in report["continuous"]:
        base = c | {"condition": c["quantity"], "level": "all"}
        yield from _ci_rows("continuous", base, "icc_a1", c.get("icc_a1"), c["n"])
        if c.get("icc_a1") and "bootstrap_ci_low" in c["icc_a1"]:
            boot = {"estimate": c["icc_a1"]["estimate"], "ci_low": c["icc_a1"]["bootstrap_ci_low"], "ci_high": c["icc_a1"]["bootstrap_ci_high"]}
            yield from _ci_rows("continuous", base, "icc_a1_bootstrap", boot, c["n"])
        if "mae" in c:
            yield from _scalar("continuous", base, f"mae_{c['unit']}", c["mae"], c["n"])
        yield from _ci_rows("continuous", base, "ccc", c.get("ccc"), c["n"])
        ba = c.get("bland_altman")
        if ba:
            yield from _ci_rows("continuous", base, f"bland_altman_bias_{c['unit']}", {"estimate": ba["bias"], "ci_low": ba["bias_ci"][0], "ci_high": ba["bias_ci"][1]}, c["n"])
            for limit in ("loa_lower", "loa_upper"):
                ci = ba[f"{limit}_ci"]
                yield from _ci_rows("continuous", base, f"bland_altman_{limit}_{c['unit']}", {"estimate": ba[limit], "ci_low": ci[0], "ci_high": ci[1]}, c["n"])
    for m in report["masks"]:
        base = m | {"condition": m["structure"], "level": "all", "rater_a": m["reader"], "rater_b": "AI"}
        yield from _ci_rows("masks", base, "dice", m["dice"], m["n"])
        yield from _scalar("masks", base, "median_hd95_mm", m["median_hd95_mm"], m["n"])


REFERENCE_COLUMNS = ("study", "case", "case_id", "level", "condition", "grade", "grade_rank", "source", "reference_version")
AI_COLUMNS = (
    "study", "case", "case_id", "level", "model_version", "dsca_mm2", "condition", "grade", "grade_rank",
    "grade_source", "grader_version", "grade_confidence", "no_grade_reason", "flag",
)  # fmt: skip


def reference_rows(*, reader_study: ReaderStudy) -> Iterator[tuple[Cell, ...]]:
    """Reference grade per item (adjudicated where recorded, else majority), calibration cases left out."""
    protocol = reader_study.protocol
    for case, level, condition, value, source, version in reference_grades(reader_study=reader_study):
        categories = condition_categories(protocol, condition)
        rank = categories.index(value) if value in categories else None
        yield (reader_study.slug, case.label, str(case.pk), level, condition, value, rank, source, version)


def ai_rows(*, reader_study: ReaderStudy) -> Iterator[tuple[Cell, ...]]:
    """The study's model's grade of each AI-graded condition per case and level (the grader's, or the
    protocol's DSCA cut-offs'), with where the grade came from and, for a level without one, why; the
    level's DSCA on its first row (reports.selectors.ai_level_rows)."""
    model_version = model_version_for_reader_study(reader_study=reader_study)
    for row in ai_level_rows(reader_study=reader_study, model_version=model_version):
        categories = condition_categories(reader_study.protocol, row.condition) if row.condition else []
        rank = categories.index(row.grade) if row.grade in categories else None
        assert model_version is not None
        yield (
            reader_study.slug, row.case.label, str(row.case.pk), row.level, model_version.version, row.dsca_mm2, row.condition, row.grade, rank,
            row.grade_source or None, row.grader_version or None, row.grade_confidence, row.no_grade_reason or None, row.flag or None,
        )  # fmt: skip


def reads_workbook(reader_study: ReaderStudy, out: IO[bytes]) -> None:
    """The reads, reference and AI tables as sheets of one XLSX workbook."""
    xlsx_write(
        {
            "reads": (READ_COLUMNS, read_rows(reader_study=reader_study)),
            "reference": (REFERENCE_COLUMNS, reference_rows(reader_study=reader_study)),
            "ai": (AI_COLUMNS, ai_rows(reader_study=reader_study)),
        },
        out,
    )
