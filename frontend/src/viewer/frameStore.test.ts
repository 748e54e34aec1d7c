import { describe, expect, it } from 'vitest';
import { FrameStore } from './frameStore';
import type { FramePart } from './preview';

const frame = (byte: number): FramePart => ({ body: new Uint8Array([byte]), transferSyntax: '1.2.840.10008.1.2.1' });
const isSettled = async (p: Promise<void> | undefined): Promise<boolean> => {
  if (!p) return true;
  let done = false;
  void p.then(() => {
    done = true;
  });
  await new Promise((r) => setTimeout(r, 0));
  return done;
};

describe('FrameStore', () => {
  it('has a promise for each expected frame until its request ends, then hands the bytes over once', async () => {
    const store = new FrameStore();
    store.expect(['a', 'b']);
    const a = store.settled('a');
    expect(a).toBeDefined();
    expect(await isSettled(a)).toBe(false);
    expect(store.take('a')).toBeUndefined();
    store.settle('a', frame(1));
    expect(await isSettled(a)).toBe(true);
    expect(store.settled('a')).toBeUndefined();
    expect(store.take('a')?.body).toEqual(new Uint8Array([1]));
    expect(store.take('a')).toBeUndefined();
    expect(store.settled('c')).toBeUndefined();
  });

  it('lets a waiter go when the request failed, with nothing to take', async () => {
    const store = new FrameStore();
    store.expect(['a']);
    const a = store.settled('a');
    store.settle('a', null);
    expect(await isSettled(a)).toBe(true);
    expect(store.take('a')).toBeUndefined();
  });

  it('stopWaiting lets every waiter go and keeps what it has', async () => {
    const store = new FrameStore();
    store.expect(['a', 'b']);
    store.settle('a', frame(1));
    const b = store.settled('b');
    store.stopWaiting();
    expect(await isSettled(b)).toBe(true);
    expect(store.settled('b')).toBeUndefined();
    expect(store.size).toBe(1);
  });

  it('release forgets every frame, keeps none that arrive later and expects nothing more', async () => {
    const store = new FrameStore();
    store.expect(['a', 'b']);
    store.settle('a', frame(1));
    const b = store.settled('b');
    store.release();
    expect(await isSettled(b)).toBe(true);
    expect(store.size).toBe(0);
    store.settle('b', frame(2));
    store.expect(['c']);
    expect(store.take('b')).toBeUndefined();
    expect(store.settled('c')).toBeUndefined();
  });
});
