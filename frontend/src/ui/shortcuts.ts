import { h } from './dom';

export interface KeyChord {
  /** KeyboardEvent.key, compared case-insensitively for letters */
  key: string;
  ctrl?: boolean;
  shift?: boolean;
  alt?: boolean;
}

export interface Shortcut {
  chords: KeyChord[];
  /** how the help panel writes the keys */
  label: string;
  description: string;
  group: 'Viewing' | 'Measuring' | 'Segmenting' | 'Grading' | 'General';
  run: () => void;
}

/** Whether a key event is exactly this chord (Ctrl and Cmd are the same key here). */
export function matchesChord(e: Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'metaKey' | 'shiftKey' | 'altKey' | 'code'>, chord: KeyChord): boolean {
  const ctrl = e.ctrlKey || e.metaKey;
  if (!!chord.ctrl !== ctrl || !!chord.alt !== e.altKey) return false;
  const single = chord.key.length === 1;
  // Shift is part of the character for symbols ("?", "["); only letters, digits and named keys check it.
  if ((!single || /^[a-z0-9]$/i.test(chord.key)) && !!chord.shift !== e.shiftKey) return false;
  if (/^[0-9]$/.test(chord.key) && e.code === `Digit${chord.key}`) return true; // Shift+1 gives "!"
  if (/^[a-z]$/i.test(chord.key) && e.code === `Key${chord.key.toUpperCase()}`) return true; // Alt+letter gives accents on macOS
  return single ? e.key.toLowerCase() === chord.key.toLowerCase() : e.key === chord.key;
}

export function findShortcut(e: Parameters<typeof matchesChord>[0], shortcuts: readonly Shortcut[]): Shortcut | null {
  return shortcuts.find((s) => s.chords.some((c) => matchesChord(e, c))) ?? null;
}

/** True while the reader types into a text field (shortcuts stay out of the way). */
export function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  return target instanceof HTMLInputElement && !['radio', 'checkbox', 'range', 'button'].includes(target.type);
}

/** The "?" panel: every shortcut, grouped. */
export function buildHelpDialog(shortcuts: readonly Shortcut[], extra: Array<{ label: string; description: string; group: Shortcut['group'] }>): HTMLDialogElement {
  const groups: Shortcut['group'][] = ['General', 'Viewing', 'Measuring', 'Segmenting', 'Grading'];
  const rows = [...shortcuts, ...extra];
  const close = h('button', { type: 'button', class: 'sr-btn', id: 'help-close' }, 'Close');
  const dialog = h(
    'dialog',
    { class: 'sr-dialog sr-help', id: 'help-dialog', 'aria-labelledby': 'help-title' },
    h('h3', { id: 'help-title' }, 'Keyboard shortcuts'),
    h(
      'div',
      { class: 'sr-help-grid' },
      ...groups.map((g) =>
        h(
          'section',
          {},
          h('h4', {}, g),
          h('dl', {}, ...rows.filter((r) => r.group === g).flatMap((r) => [h('dt', {}, h('kbd', {}, r.label)), h('dd', {}, r.description)])),
        ),
      ),
    ),
    h('p', { class: 'sr-hint' }, 'Mouse: left = the picked tool (window/level by default), middle drag = pan, right drag = zoom, wheel = scroll slices. Shift+click on the sagittal image = jump the axial images there.'),
    h('div', { class: 'sr-dialog-actions' }, close),
  );
  close.addEventListener('click', () => dialog.close());
  return dialog;
}
