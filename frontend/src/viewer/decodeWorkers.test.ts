import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeWorkerCount, startDecodeWorkers, takeDecodeWorker } from './decodeWorkers';

describe('decode workers', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('uses two to three workers, one core fewer than the machine has', () => {
    for (const [cores, workers] of [
      [1, 2],
      [2, 2],
      [3, 2],
      [4, 3],
      [16, 3],
    ] as const) {
      vi.stubGlobal('navigator', { hardwareConcurrency: cores });
      expect(decodeWorkerCount()).toBe(workers);
    }
  });

  it('hands out the workers started early first, then new ones, each a module worker of the loader', () => {
    const made: Array<{ url: string; type: string | undefined }> = [];
    class FakeWorker {
      constructor(url: URL, options?: WorkerOptions) {
        made.push({ url: String(url), type: options?.type });
      }
    }
    vi.stubGlobal('Worker', FakeWorker);
    vi.stubGlobal('navigator', { hardwareConcurrency: 2 });
    startDecodeWorkers();
    startDecodeWorkers(); // once
    expect(made).toHaveLength(2);
    const first = takeDecodeWorker();
    const second = takeDecodeWorker();
    expect(made).toHaveLength(2);
    expect(first).not.toBe(second);
    takeDecodeWorker();
    expect(made).toHaveLength(3);
    expect(new Set(made.map((m) => m.type))).toEqual(new Set(['module']));
    expect(made.every((m) => m.url.endsWith('/decodeImageFrameWorker.js'))).toBe(true);
  });
});
