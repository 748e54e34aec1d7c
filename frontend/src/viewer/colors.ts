/**
 * Colours of the AI structures: one fixed, distinct colour per label value,
 * so a structure looks the same on both viewports and in the legend.
 */

/** Label value 1.. cycles through these (Okabe–Ito-like, readable on dark grey). */
const PALETTE: ReadonlyArray<[number, number, number]> = [
  [230, 159, 0], // orange: vertebral body
  [86, 180, 233], // sky blue: disc
  [0, 158, 115], // green: spinal canal
  [240, 228, 66], // yellow: dural sac
  [204, 121, 167], // pink: muscle left
  [213, 94, 0], // vermilion: muscle right
  [0, 114, 178], // blue
  [170, 120, 255], // violet
  [120, 220, 200], // teal
  [255, 120, 120], // salmon
];

export function labelColor(labelValue: number): [number, number, number] {
  if (!Number.isInteger(labelValue) || labelValue <= 0) return [0, 0, 0];
  return PALETTE[(labelValue - 1) % PALETTE.length]!;
}

/** "paraspinal_muscle_left" -> "Paraspinal muscle left" */
export function prettyLabelName(name: string): string {
  const words = name.replace(/[_-]+/g, ' ').trim();
  return words.length === 0 ? name : words[0]!.toUpperCase() + words.slice(1);
}

/** label_map entries as (value, name) sorted by value; non-numeric keys dropped. */
export function sortedLabelEntries(labelMap: Record<string, string>): Array<{ value: number; name: string }> {
  return Object.entries(labelMap)
    .map(([key, name]) => ({ value: Number(key), name }))
    .filter((e) => Number.isInteger(e.value) && e.value > 0 && e.value < 256)
    .sort((a, b) => a.value - b.value);
}
