import { describe, expect, it } from 'vitest';
import type { Protocol } from '../api/types';
import {
  buildGradesPayload,
  categoryForKey,
  findMissingGrades,
  gradeKey,
  gradeMapFromGrades,
  gradeRows,
  isComplete,
} from './grades';

const FOUR_GRADE = {
  name: '4-grade',
  categories: [
    { code: '0', label: 'Normal' },
    { code: '1', label: 'Mild' },
    { code: '2', label: 'Moderate' },
    { code: '3', label: 'Severe' },
  ],
};
const SCHIZAS = {
  name: 'Schizas',
  categories: [
    { code: 'A', label: 'A' },
    { code: 'B', label: 'B' },
    { code: 'C', label: 'C' },
    { code: 'D', label: 'D' },
  ],
};
const PROTOCOL: Protocol = {
  levels: ['L1-L2', 'L2-L3', 'L3-L4'],
  conditions: [
    { key: 'central_canal', label: 'Central canal stenosis', scale: FOUR_GRADE },
    { key: 'schizas', label: 'Schizas', scale: SCHIZAS },
  ],
};

describe('buildGradesPayload', () => {
  it('lists graded cells in protocol order (condition, then level)', () => {
    const grades = new Map([
      [gradeKey('L3-L4', 'central_canal'), '3'],
      [gradeKey('L1-L2', 'schizas'), 'B'],
      [gradeKey('L1-L2', 'central_canal'), '0'],
    ]);
    expect(buildGradesPayload(PROTOCOL, grades)).toEqual([
      { level: 'L1-L2', condition: 'central_canal', value: '0' },
      { level: 'L3-L4', condition: 'central_canal', value: '3' },
      { level: 'L1-L2', condition: 'schizas', value: 'B' },
    ]);
  });

  it('drops cells outside the protocol or off the scale', () => {
    const grades = new Map([
      [gradeKey('L5-S1', 'central_canal'), '1'],
      [gradeKey('L1-L2', 'foraminal_left'), '1'],
      [gradeKey('L2-L3', 'central_canal'), '7'],
      [gradeKey('L2-L3', 'schizas'), 'b'],
    ]);
    expect(buildGradesPayload(PROTOCOL, grades)).toEqual([]);
  });

  it('round-trips the grades of a read', () => {
    const read = [
      { level: 'L2-L3', condition: 'central_canal', value: '2' },
      { level: 'L3-L4', condition: 'schizas', value: 'D' },
    ];
    expect(buildGradesPayload(PROTOCOL, gradeMapFromGrades(read))).toEqual(read);
  });
});

describe('findMissingGrades', () => {
  it('lists every ungraded cell as level/condition, in protocol order', () => {
    const grades = gradeMapFromGrades([
      { level: 'L1-L2', condition: 'central_canal', value: '1' },
      { level: 'L3-L4', condition: 'central_canal', value: '9' }, // off the scale: still missing
      { level: 'L2-L3', condition: 'schizas', value: 'A' },
    ]);
    expect(findMissingGrades(PROTOCOL, grades)).toEqual([
      'L2-L3/central_canal',
      'L3-L4/central_canal',
      'L1-L2/schizas',
      'L3-L4/schizas',
    ]);
    expect(isComplete(PROTOCOL, grades)).toBe(false);
  });

  it('is empty once every level of every condition is graded', () => {
    const grades = new Map<string, string>();
    for (const row of gradeRows(PROTOCOL)) grades.set(gradeKey(row.level, row.condition), row.condition === 'schizas' ? 'C' : '0');
    expect(findMissingGrades(PROTOCOL, grades)).toEqual([]);
    expect(isComplete(PROTOCOL, grades)).toBe(true);
  });
});

describe('gradeRows and categoryForKey', () => {
  it('walks conditions then levels', () => {
    expect(gradeRows(PROTOCOL).map((r) => gradeKey(r.level, r.condition))).toEqual([
      'L1-L2/central_canal',
      'L2-L3/central_canal',
      'L3-L4/central_canal',
      'L1-L2/schizas',
      'L2-L3/schizas',
      'L3-L4/schizas',
    ]);
  });

  it('maps a key to a code, or a digit to the category index', () => {
    expect(categoryForKey(PROTOCOL, 'central_canal', '2')).toBe('2');
    expect(categoryForKey(PROTOCOL, 'central_canal', '4')).toBeNull();
    expect(categoryForKey(PROTOCOL, 'schizas', 'c')).toBe('C');
    expect(categoryForKey(PROTOCOL, 'schizas', '0')).toBe('A');
    expect(categoryForKey(PROTOCOL, 'schizas', '3')).toBe('D');
    expect(categoryForKey(PROTOCOL, 'schizas', 'ArrowUp')).toBeNull();
    expect(categoryForKey(PROTOCOL, 'unknown', '1')).toBeNull();
  });
});
