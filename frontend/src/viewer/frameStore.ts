/**
 * The frames the boot (boot.ts) has requested for the hung series, until the
 * viewer takes them: each frame's bytes once received, and for each frame
 * still on its way a promise the viewer can wait on instead of requesting it
 * a second time.
 *
 * No Cornerstone import here: part of the small entry chunk.
 */
import type { FramePart } from './preview';

export class FrameStore {
  private readonly frames = new Map<string, FramePart>();
  private readonly waiting = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  private released = false;

  /** The boot is going to request these URLs: `settled` now has a promise for each. */
  expect(urls: Iterable<string>): void {
    if (this.released) return;
    for (const url of urls) {
      if (this.waiting.has(url) || this.frames.has(url)) continue;
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.waiting.set(url, { promise, resolve });
    }
  }

  /** The boot's request for `url` has ended: with the frame, or null when it failed or could not be read. */
  settle(url: string, frame: FramePart | null): void {
    if (frame && !this.released) this.frames.set(url, frame);
    const w = this.waiting.get(url);
    this.waiting.delete(url);
    w?.resolve();
  }

  /**
   * Resolves once the boot's request for `url` has ended (its frame, if any,
   * is then `take`-able); undefined when the boot is not waiting for it:
   * already received, never requested, or released.
   */
  settled(url: string): Promise<void> | undefined {
    return this.waiting.get(url)?.promise;
  }

  /** The frame's bytes, handed over once (the store forgets them); undefined when it has none. */
  take(url: string): FramePart | undefined {
    const frame = this.frames.get(url);
    this.frames.delete(url);
    return frame;
  }

  /** Lets go of whoever waits for a frame the boot will not request any more (it keeps those it has). */
  stopWaiting(): void {
    for (const w of this.waiting.values()) w.resolve();
    this.waiting.clear();
  }

  /** Forgets every frame not taken and keeps none that arrive later; whoever waits is let go. */
  release(): void {
    this.released = true;
    this.frames.clear();
    this.stopWaiting();
  }

  /** How many frames are held (received, not taken). */
  get size(): number {
    return this.frames.size;
  }
}
