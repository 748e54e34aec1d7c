/**
 * Pure grading logic: the grid's columns (conditions, then their conditional
 * sub-questions), the local grade state, the PUT payload, and what is still
 * missing before a read can be submitted.
 */
import type { Grade, Measurement, Protocol, Scale } from '../api/types';

/** "<level>/<condition or sub-question or measurement key>", the key the API uses in `missing`. */
export function gradeKey(level: string, key: string): string {
  return `${level}/${key}`;
}

/** level/key -> category code */
export type GradeMap = Map<string, string>;

export function gradeMapFromGrades(grades: readonly Grade[]): GradeMap {
  const map: GradeMap = new Map();
  for (const g of grades) map.set(gradeKey(g.level, g.condition), g.value);
  return map;
}

/** One column of the grading grid: a condition, or a sub-question asked under it. */
export interface GridColumn {
  key: string;
  label: string;
  /** short header text */
  short: string;
  side: 'left' | 'right' | null;
  required: boolean;
  scale: Scale;
  /** the parent condition's key, for a sub-question */
  parent: string | null;
  /** parent codes for which a sub-question is asked */
  when: readonly string[];
}

/** Columns in protocol order: each condition followed by its sub-questions. */
export function gridColumns(protocol: Protocol): GridColumn[] {
  const out: GridColumn[] = [];
  const seen = new Set<string>();
  const add = (c: GridColumn): void => {
    if (seen.has(c.key)) throw new Error(`the protocol uses the key "${c.key}" twice`);
    seen.add(c.key);
    out.push(c);
  };
  for (const c of protocol.conditions) {
    if (!c.scale || c.scale.categories.length === 0) throw new Error(`condition "${c.key}" has no categories`);
    const side = c.side ?? null;
    add({
      key: c.key,
      label: c.label,
      short: shortLabel(c.label, side),
      side,
      required: c.required ?? true,
      scale: c.scale,
      parent: null,
      when: [],
    });
    for (const q of c.sub_questions ?? []) {
      add({
        key: q.key,
        label: `${c.label}: ${q.label}`,
        short: q.label,
        side,
        required: q.required,
        scale: q.scale,
        parent: c.key,
        when: q.when,
      });
    }
  }
  return out;
}

function shortLabel(label: string, side: 'left' | 'right' | null): string {
  const base = label.replace(/\s+stenosis$/i, '').replace(/\s*\((left|right)\)\s*$/i, '');
  if (side === null || /\b(left|right)\b/i.test(base)) return base;
  return `${base} ${side === 'left' ? 'L' : 'R'}`;
}

/** Whether a cell is asked: always for a condition; for a sub-question, when its parent's grade is in `when`. */
export function isApplicable(column: GridColumn, level: string, grades: ReadonlyMap<string, string>): boolean {
  if (column.parent === null) return true;
  const parent = grades.get(gradeKey(level, column.parent));
  return parent !== undefined && column.when.includes(parent);
}

function validCode(column: GridColumn, value: string | undefined): value is string {
  return value !== undefined && column.scale.categories.some((c) => c.code === value);
}

/**
 * The grades list for PUT, in grid order (column, then level): every valid
 * answer of an applicable cell. An answer to a sub-question whose parent no
 * longer asks it is dropped, so the read never holds contradictory answers.
 */
export function buildGradesPayload(protocol: Protocol, grades: ReadonlyMap<string, string>): Grade[] {
  const out: Grade[] = [];
  for (const column of gridColumns(protocol)) {
    for (const level of protocol.levels) {
      const value = grades.get(gradeKey(level, column.key));
      if (validCode(column, value) && isApplicable(column, level, grades)) out.push({ level, condition: column.key, value });
    }
  }
  return out;
}

/** Required measurements per level: "<level>/<measurement key>" present in `measurements`? */
function measurementMissing(protocol: Protocol, measurements: readonly Measurement[]): string[] {
  const missing: string[] = [];
  for (const spec of protocol.measurements ?? []) {
    if (!spec.required) continue;
    const levels = spec.levels.length > 0 ? spec.levels : protocol.levels;
    for (const level of levels) {
      if (!measurements.some((m) => m.key === spec.key && m.level === level)) missing.push(gradeKey(level, spec.key));
    }
  }
  return missing;
}

/**
 * What a submit would still miss, as "<level>/<key>" in grid order, then
 * required measurements: required conditions without a valid grade, asked
 * required sub-questions without one, required measurements not yet made.
 */
export function findMissing(
  protocol: Protocol,
  grades: ReadonlyMap<string, string>,
  measurements: readonly Measurement[] = [],
): string[] {
  const missing: string[] = [];
  for (const column of gridColumns(protocol)) {
    if (!column.required) continue;
    for (const level of protocol.levels) {
      if (!isApplicable(column, level, grades)) continue;
      if (!validCode(column, grades.get(gradeKey(level, column.key)))) missing.push(gradeKey(level, column.key));
    }
  }
  return [...missing, ...measurementMissing(protocol, measurements)];
}

/**
 * The category a key press picks on a scale: a key equal to a category code
 * (case-insensitive) wins when `codes` is true; otherwise a digit picks the
 * category at that 0-based index. null when the key picks nothing.
 */
export function categoryForKey(scale: Scale, key: string, codes = true): string | null {
  if (key.length !== 1) return null;
  if (codes) {
    const byCode = scale.categories.find((c) => c.code.toLowerCase() === key.toLowerCase());
    if (byCode) return byCode.code;
  }
  if (/^[0-9]$/.test(key)) return scale.categories[Number(key)]?.code ?? null;
  return null;
}

/** A cell of the grid. */
export interface Cell {
  row: number;
  column: number;
}

/**
 * The next applicable cell from `from` moving by (dRow, dColumn): moving
 * sideways skips cells that are not asked; moving up or down keeps the column
 * and, if that cell is not asked there, stays put. Stays put at the edges.
 */
export function moveCell(
  columns: readonly GridColumn[],
  levels: readonly string[],
  grades: ReadonlyMap<string, string>,
  from: Cell,
  dRow: number,
  dColumn: number,
): Cell {
  if (dColumn !== 0) {
    for (let c = from.column + dColumn; c >= 0 && c < columns.length; c += dColumn) {
      if (isApplicable(columns[c]!, levels[from.row]!, grades)) return { row: from.row, column: c };
    }
    return from;
  }
  const row = from.row + dRow;
  if (row < 0 || row >= levels.length) return from;
  const column = columns[from.column]!;
  if (isApplicable(column, levels[row]!, grades)) return { row, column: from.column };
  // fall back to the parent condition's column on that level
  const parentIndex = columns.findIndex((c) => c.key === column.parent);
  return parentIndex >= 0 ? { row, column: parentIndex } : from;
}

/** The cell after `from` in reading order (across the row, then down), for "next" after a grade. */
export function nextCell(
  columns: readonly GridColumn[],
  levels: readonly string[],
  grades: ReadonlyMap<string, string>,
  from: Cell,
): Cell {
  const sideways = moveCell(columns, levels, grades, from, 0, 1);
  if (sideways.column !== from.column) return sideways;
  if (from.row + 1 >= levels.length) return from;
  return { row: from.row + 1, column: 0 };
}
