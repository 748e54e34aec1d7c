/**
 * Pure grading logic: the local grade state, the PUT payload, and what is
 * still missing before a read can be submitted.
 */
import type { Grade, Protocol } from '../api/types';

/** "<level>/<condition>", the key the API uses in `missing`. */
export function gradeKey(level: string, condition: string): string {
  return `${level}/${condition}`;
}

/** level/condition -> category code */
export type GradeMap = Map<string, string>;

export function gradeMapFromGrades(grades: readonly Grade[]): GradeMap {
  const map: GradeMap = new Map();
  for (const g of grades) map.set(gradeKey(g.level, g.condition), g.value);
  return map;
}

/**
 * The grades list for PUT, in protocol order (condition, then level), with
 * only graded cells that the protocol knows and whose value is on the scale.
 */
export function buildGradesPayload(protocol: Protocol, grades: ReadonlyMap<string, string>): Grade[] {
  const out: Grade[] = [];
  for (const condition of protocol.conditions) {
    const codes = new Set(condition.scale.categories.map((c) => c.code));
    for (const level of protocol.levels) {
      const value = grades.get(gradeKey(level, condition.key));
      if (value !== undefined && codes.has(value)) {
        out.push({ level, condition: condition.key, value });
      }
    }
  }
  return out;
}

/** Cells not yet graded, as "<level>/<condition>", in protocol order. */
export function findMissingGrades(protocol: Protocol, grades: ReadonlyMap<string, string>): string[] {
  const missing: string[] = [];
  for (const condition of protocol.conditions) {
    const codes = new Set(condition.scale.categories.map((c) => c.code));
    for (const level of protocol.levels) {
      const value = grades.get(gradeKey(level, condition.key));
      if (value === undefined || !codes.has(value)) missing.push(gradeKey(level, condition.key));
    }
  }
  return missing;
}

export function isComplete(protocol: Protocol, grades: ReadonlyMap<string, string>): boolean {
  return findMissingGrades(protocol, grades).length === 0;
}

/** A row of the grading table: one level of one condition. */
export interface GradeRow {
  level: string;
  condition: string;
}

/** All rows in the order ↑/↓ walk through them. */
export function gradeRows(protocol: Protocol): GradeRow[] {
  return protocol.conditions.flatMap((c) => protocol.levels.map((level) => ({ level, condition: c.key })));
}

/**
 * The category a key press picks for a condition: a key equal to a category
 * code (case-insensitive) wins; otherwise a digit picks the category at that
 * 0-based index. null when the key picks nothing.
 */
export function categoryForKey(protocol: Protocol, conditionKey: string, key: string): string | null {
  const condition = protocol.conditions.find((c) => c.key === conditionKey);
  if (!condition || key.length !== 1) return null;
  const byCode = condition.scale.categories.find((c) => c.code.toLowerCase() === key.toLowerCase());
  if (byCode) return byCode.code;
  if (/^[0-9]$/.test(key)) {
    return condition.scale.categories[Number(key)]?.code ?? null;
  }
  return null;
}
