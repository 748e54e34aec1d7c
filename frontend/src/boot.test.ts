import { describe, expect, it } from 'vitest';
import { FRAME_ACCEPT, framePrefetchOrder, readMountConfig, warmHttpCache } from './boot';

describe('framePrefetchOrder', () => {
  it('puts every series first shown slice first, then works outward, the series taking turns', () => {
    const sag = { urls: ['s0', 's1', 's2', 's3', 's4'], start: 2 };
    const ax = { urls: ['a0', 'a1', 'a2'], start: 0 };
    expect(framePrefetchOrder([sag, ax])).toEqual(['s2', 'a0', 's3', 'a1', 's1', 'a2', 's4', 's0']);
  });

  it('lists each frame once, clamps a start outside the series and skips empty series', () => {
    const order = framePrefetchOrder([{ urls: ['x0', 'x1', 'x2'], start: 7 }, { urls: [], start: 0 }]);
    expect(order).toEqual(['x2', 'x1', 'x0']);
    expect(framePrefetchOrder([])).toEqual([]);
  });
});

describe('warmHttpCache', () => {
  it('requests every URL with the frame loader Accept header, never more than the limit at once', async () => {
    let inFlight = 0;
    let most = 0;
    const seen: Array<[string, string]> = [];
    const fake = (async (input: RequestInfo | URL, init?: RequestInit) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      seen.push([String(input), new Headers(init?.headers).get('Accept') ?? '']);
      await new Promise((r) => setTimeout(r, 2));
      inFlight -= 1;
      return String(input).endsWith('bad') ? new Response('no', { status: 404 }) : new Response(new Uint8Array(4));
    }) as typeof fetch;
    const urls = ['u1', 'u2', 'u3', 'u4', 'u5', 'bad'];
    expect(await warmHttpCache(urls, 2, fake)).toBe(5);
    expect(most).toBe(2);
    expect(seen.map(([u]) => u).sort()).toEqual([...urls].sort());
    expect(new Set(seen.map(([, a]) => a))).toEqual(new Set([FRAME_ACCEPT]));
  });

  it('survives network errors', async () => {
    const failing = (async () => {
      throw new TypeError('network down');
    }) as typeof fetch;
    expect(await warmHttpCache(['a', 'b'], 4, failing)).toBe(0);
  });
});

describe('readMountConfig', () => {
  it('refuses a page without an assignment id', () => {
    const root = { dataset: { assignmentId: '  ' } } as unknown as HTMLElement;
    expect(() => readMountConfig(root)).toThrow(/no assignment id/);
  });

  it('defaults the API and DICOMweb bases', () => {
    const root = { dataset: { assignmentId: 'abc' } } as unknown as HTMLElement;
    expect(readMountConfig(root)).toEqual({ assignmentId: 'abc', apiBase: '/api/v1', dicomwebBase: '/dicomweb' });
  });
});
