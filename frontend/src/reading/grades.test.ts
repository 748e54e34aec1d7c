import { describe, expect, it } from 'vitest';
import type { Measurement, Protocol } from '../api/types';
import {
  buildGradesPayload,
  categoryForKey,
  findMissing,
  gradeMapFromGrades,
  gridColumns,
  isApplicable,
  moveCell,
  nextCell,
} from './grades';

const FOUR_GRADE = {
  key: 'four_grade',
  name: '4-grade',
  categories: [
    { code: '0', label: 'Normal' },
    { code: '1', label: 'Mild' },
    { code: '2', label: 'Moderate' },
    { code: '3', label: 'Severe' },
  ],
};
const SCHIZAS = {
  key: 'schizas',
  name: 'Schizas',
  categories: ['A', 'B', 'C', 'D'].map((code) => ({ code, label: `Grade ${code}` })),
};
const SUBGRADE = { key: null, name: 'A sub-grade', categories: ['A1', 'A2', 'A3', 'A4'].map((code) => ({ code, label: code })) };

function protocol(p: Partial<Protocol>): Protocol {
  return { name: 'test', levels: [], conditions: [], measurements: [], segmentation: null, two_phase: false, compare: false, ...p };
}

const PROTOCOL: Protocol = protocol({
  levels: ['L3-L4', 'L4-L5'],
  conditions: [
    {
      key: 'schizas',
      label: 'Central canal stenosis',
      side: null,
      required: true,
      scale: SCHIZAS,
      sub_questions: [{ key: 'schizas_a', label: 'A sub-grade', when: ['A'], required: true, scale: SUBGRADE }],
    },
    { key: 'foraminal_left', label: 'Foraminal stenosis', side: 'left', required: true, scale: FOUR_GRADE, sub_questions: [] },
    { key: 'rootlet', label: 'Rootlet sign', side: null, required: false, scale: FOUR_GRADE, sub_questions: [] },
  ],
  measurements: [{ key: 'dsca', kind: 'area', label: 'DSCA', unit: 'mm2', required: true, levels: ['L4-L5'] }],
});

function measurement(key: string, level: string): Measurement {
  return { id: 'm', key, kind: 'area', level, label: '', series_instance_uid: 's', sop_instance_uid: 'i', points_mm: [], values: { area_mm2: 1 } };
}

describe('gridColumns', () => {
  it('puts sub-questions after their condition, with sides in the short header', () => {
    const cols = gridColumns(PROTOCOL);
    expect(cols.map((c) => [c.key, c.short, c.parent, c.required])).toEqual([
      ['schizas', 'Central canal', null, true],
      ['schizas_a', 'A sub-grade', 'schizas', true],
      ['foraminal_left', 'Foraminal L', null, true],
      ['rootlet', 'Rootlet sign', null, false],
    ]);
  });
  it('rejects a duplicated key or an empty scale', () => {
    expect(() => gridColumns(protocol({ conditions: [PROTOCOL.conditions[1]!, PROTOCOL.conditions[1]!] }))).toThrow('"foraminal_left" twice');
    expect(() =>
      gridColumns(protocol({ conditions: [{ key: 'x', label: 'X', side: null, required: true, sub_questions: [], scale: { key: null, name: 'e', categories: [] } }] })),
    ).toThrow('"x" has no categories');
  });
});

describe('sub-questions, payload and missing answers', () => {
  const cols = gridColumns(PROTOCOL);
  it('asks a sub-question only when the parent grade is in `when`', () => {
    const grades = gradeMapFromGrades([{ level: 'L3-L4', condition: 'schizas', value: 'A' }]);
    expect(isApplicable(cols[1]!, 'L3-L4', grades)).toBe(true);
    expect(isApplicable(cols[1]!, 'L4-L5', grades)).toBe(false);
  });
  it('drops answers of sub-questions no longer asked and values off the scale', () => {
    const grades = gradeMapFromGrades([
      { level: 'L3-L4', condition: 'schizas', value: 'C' },
      { level: 'L3-L4', condition: 'schizas_a', value: 'A2' },
      { level: 'L4-L5', condition: 'schizas', value: 'A' },
      { level: 'L4-L5', condition: 'schizas_a', value: 'A3' },
      { level: 'L4-L5', condition: 'foraminal_left', value: '9' },
    ]);
    expect(buildGradesPayload(PROTOCOL, grades)).toEqual([
      { level: 'L3-L4', condition: 'schizas', value: 'C' },
      { level: 'L4-L5', condition: 'schizas', value: 'A' },
      { level: 'L4-L5', condition: 'schizas_a', value: 'A3' },
    ]);
  });
  it('lists required cells, asked sub-questions and required measurements still missing', () => {
    const grades = gradeMapFromGrades([
      { level: 'L3-L4', condition: 'schizas', value: 'A' },
      { level: 'L4-L5', condition: 'schizas', value: 'B' },
      { level: 'L4-L5', condition: 'foraminal_left', value: '2' },
    ]);
    expect(findMissing(PROTOCOL, grades)).toEqual(['L3-L4/schizas_a', 'L3-L4/foraminal_left', 'L4-L5/dsca']);
    expect(findMissing(PROTOCOL, grades, [measurement('dsca', 'L4-L5')])).toEqual(['L3-L4/schizas_a', 'L3-L4/foraminal_left']);
  });
});

describe('keyboard', () => {
  it('maps codes (case-insensitive) and 0-based digits to categories', () => {
    expect(categoryForKey(SCHIZAS, 'b')).toBe('B');
    expect(categoryForKey(SCHIZAS, '2')).toBe('C');
    expect(categoryForKey(SCHIZAS, 'b', false)).toBeNull();
    expect(categoryForKey(FOUR_GRADE, '3')).toBe('3');
    expect(categoryForKey(FOUR_GRADE, '7')).toBeNull();
    expect(categoryForKey(FOUR_GRADE, 'Enter')).toBeNull();
  });
  it('moves across asked cells only and walks rows in reading order', () => {
    const cols = gridColumns(PROTOCOL);
    const levels = PROTOCOL.levels;
    const noA = gradeMapFromGrades([{ level: 'L3-L4', condition: 'schizas', value: 'B' }]);
    expect(moveCell(cols, levels, noA, { row: 0, column: 0 }, 0, 1)).toEqual({ row: 0, column: 2 });
    const withA = gradeMapFromGrades([{ level: 'L3-L4', condition: 'schizas', value: 'A' }]);
    expect(nextCell(cols, levels, withA, { row: 0, column: 0 })).toEqual({ row: 0, column: 1 });
    // down from a sub-question onto a level where it is not asked: the parent's column
    expect(moveCell(cols, levels, withA, { row: 0, column: 1 }, 1, 0)).toEqual({ row: 1, column: 0 });
    expect(nextCell(cols, levels, withA, { row: 0, column: 3 })).toEqual({ row: 1, column: 0 });
    expect(nextCell(cols, levels, withA, { row: 1, column: 3 })).toEqual({ row: 1, column: 3 });
    expect(moveCell(cols, levels, withA, { row: 0, column: 0 }, -1, 0)).toEqual({ row: 0, column: 0 });
  });
});
