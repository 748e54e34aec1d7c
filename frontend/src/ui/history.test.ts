import { describe, expect, it } from 'vitest';
import { History } from './history';
import { formatElapsed, ReadingTimer } from '../reading/timer';

describe('History', () => {
  it('undoes and redoes in order, and a new action drops the redo branch', () => {
    const log: string[] = [];
    const cmd = (name: string) => ({ label: name, undo: () => log.push(`undo ${name}`), redo: () => log.push(`redo ${name}`) });
    const history = new History(2);
    let changes = 0;
    history.onChange(() => changes++);
    history.push(cmd('a'));
    history.push(cmd('b'));
    history.push(cmd('c')); // limit 2: 'a' falls off
    expect(history.undoLabel).toBe('c');
    history.undo();
    history.undo();
    expect(history.undo()).toBeNull();
    expect(history.canUndo).toBe(false);
    expect(history.redoLabel).toBe('b');
    history.redo();
    history.push(cmd('d'));
    expect(history.canRedo).toBe(false);
    expect(log).toEqual(['undo c', 'undo b', 'redo b']);
    expect(changes).toBe(7);
    expect(() => new History(0)).toThrow('at least 1');
  });
});

describe('ReadingTimer', () => {
  it('counts only while running, from the server value, in whole seconds', () => {
    let now = 1000;
    const timer = new ReadingTimer(30, () => now);
    now += 5000;
    expect(timer.elapsedS).toBe(30);
    timer.start();
    now += 2500;
    expect(timer.elapsedS).toBe(32);
    timer.pause();
    now += 60_000;
    expect(timer.elapsedS).toBe(32);
    timer.start();
    now += 600;
    expect(timer.elapsedS).toBe(33);
    timer.reset(100);
    now += 1000;
    expect(timer.elapsedS).toBe(101);
    expect(() => new ReadingTimer(-1)).toThrow('>= 0');
  });
  it('formats minutes and hours', () => {
    expect(formatElapsed(0)).toBe('0:00');
    expect(formatElapsed(75)).toBe('1:15');
    expect(formatElapsed(3725)).toBe('1:02:05');
  });
});
