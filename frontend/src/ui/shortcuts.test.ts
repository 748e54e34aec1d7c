import { describe, expect, it } from 'vitest';
import { findShortcut, matchesChord, type Shortcut } from './shortcuts';

function ev(key: string, opts: { ctrl?: boolean; shift?: boolean; alt?: boolean; code?: string } = {}) {
  return { key, code: opts.code ?? '', ctrlKey: !!opts.ctrl, metaKey: false, shiftKey: !!opts.shift, altKey: !!opts.alt };
}

describe('matchesChord', () => {
  it('matches letters case-insensitively but respects Shift and Ctrl', () => {
    expect(matchesChord(ev('l'), { key: 'l' })).toBe(true);
    expect(matchesChord(ev('L', { shift: true }), { key: 'l' })).toBe(false);
    expect(matchesChord(ev('z', { ctrl: true }), { key: 'z', ctrl: true })).toBe(true);
    expect(matchesChord(ev('Z', { ctrl: true, shift: true }), { key: 'z', ctrl: true })).toBe(false);
    expect(matchesChord(ev('Z', { ctrl: true, shift: true }), { key: 'z', ctrl: true, shift: true })).toBe(true);
  });
  it('matches symbols whatever Shift, and Shift+digit by its code', () => {
    expect(matchesChord(ev('?', { shift: true }), { key: '?' })).toBe(true);
    expect(matchesChord(ev('!', { shift: true, code: 'Digit1' }), { key: '1', shift: true })).toBe(true);
    expect(matchesChord(ev('1', { code: 'Digit1' }), { key: '1', shift: true })).toBe(false);
    expect(matchesChord(ev('¬', { alt: true, code: 'KeyL' }), { key: 'l', alt: true })).toBe(true);
  });
  it('finds the first shortcut whose chord matches', () => {
    const list: Shortcut[] = [
      { chords: [{ key: 'y', ctrl: true }, { key: 'z', ctrl: true, shift: true }], label: 'Ctrl+Y', description: 'redo', group: 'General', run: () => undefined },
    ];
    expect(findShortcut(ev('Z', { ctrl: true, shift: true }), list)?.description).toBe('redo');
    expect(findShortcut(ev('y'), list)).toBeNull();
  });
});
