import { describe, expect, it } from 'vitest';
import type { Assignment } from './api/types';
import { bootPlanOf, FRAME_ACCEPT, framePrefetchOrder, parseBootPlan, prefetchFrames, readMountConfig } from './boot';

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

describe('prefetchFrames', () => {
  const enc = new TextEncoder();
  const multipart = (payload: number[]): Response => {
    const head = enc.encode('--b0\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\n\r\n');
    const tail = enc.encode('\r\n--b0--\r\n');
    const body = new Uint8Array(head.length + payload.length + tail.length);
    body.set(head, 0);
    body.set(payload, head.length);
    body.set(tail, head.length + payload.length);
    return new Response(body, { headers: { 'Content-Type': 'multipart/related; type="application/octet-stream"; boundary=b0' } });
  };

  it('requests every URL with the frame loader Accept header and priority, never more than the limit at once, and settles each', async () => {
    let inFlight = 0;
    let most = 0;
    const seen: Array<[string, string]> = [];
    const priorities = new Set<RequestPriority | undefined>();
    const fake = (async (input: RequestInfo | URL, init?: RequestInit) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      seen.push([String(input), new Headers(init?.headers).get('Accept') ?? '']);
      priorities.add(init?.priority);
      await new Promise((r) => setTimeout(r, 2));
      inFlight -= 1;
      const url = String(input);
      if (url.endsWith('bad')) return new Response('no', { status: 404 });
      if (url.endsWith('broken')) return new Response('no boundary', { headers: { 'Content-Type': 'multipart/related' } });
      return multipart([Number(url.slice(1)), 7]);
    }) as typeof fetch;
    const urls = ['u1', 'u2', 'u3', 'u4', 'u5', 'bad', 'broken'];
    const settled = new Map<string, { body: number[]; ts: string | null } | null>();
    expect(await prefetchFrames(urls, (url, f) => settled.set(url, f && { body: [...f.body], ts: f.transferSyntax }), { concurrency: 2, priority: 'low', fetchImpl: fake })).toBe(5);
    expect(most).toBe(2);
    expect(seen.map(([u]) => u).sort()).toEqual([...urls].sort());
    expect(new Set(seen.map(([, a]) => a))).toEqual(new Set([FRAME_ACCEPT]));
    expect(priorities).toEqual(new Set(['low']));
    // every URL is settled, the unreadable ones with null
    expect([...settled.keys()].sort()).toEqual([...urls].sort());
    expect(settled.get('u3')).toEqual({ body: [3, 7], ts: '1.2.840.10008.1.2.1' });
    expect(settled.get('bad')).toBeNull();
    expect(settled.get('broken')).toBeNull();
  });

  it('starts every request at once without a limit', async () => {
    let inFlight = 0;
    let most = 0;
    const fake = (async () => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight -= 1;
      return multipart([1]);
    }) as typeof fetch;
    expect(await prefetchFrames(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], () => undefined, { fetchImpl: fake })).toBe(8);
    expect(most).toBe(8);
  });

  it('survives network errors', async () => {
    const failing = (async () => {
      throw new TypeError('network down');
    }) as typeof fetch;
    const settled: Array<[string, unknown]> = [];
    expect(await prefetchFrames(['a', 'b'], (url, f) => settled.push([url, f]), { fetchImpl: failing })).toBe(0);
    expect(settled.sort()).toEqual([
      ['a', null],
      ['b', null],
    ]);
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

describe('parseBootPlan', () => {
  const page = {
    case_label: 'Case 007',
    study_instance_uid: '2.25.1',
    series: [
      { role: 'sagittal_t2', series_instance_uid: '2.25.2', description: 'SAG T2' },
      { role: 'axial_t2', series_instance_uid: '2.25.3', description: '' },
    ],
  };

  it("reads the template's JSON into the boot's names", () => {
    expect(parseBootPlan(JSON.stringify(page))).toEqual({
      caseLabel: 'Case 007',
      studyInstanceUid: '2.25.1',
      series: [
        { role: 'sagittal_t2', seriesInstanceUid: '2.25.2', description: 'SAG T2' },
        { role: 'axial_t2', seriesInstanceUid: '2.25.3', description: '' },
      ],
    });
  });

  it.each([
    ['no element', undefined],
    ['empty', ''],
    ['not JSON', '{"case_label": '],
    ['not an object', '[1, 2]'],
    ['null', 'null'],
    ['no study', JSON.stringify({ ...page, study_instance_uid: '' })],
    ['series not a list', JSON.stringify({ ...page, series: {} })],
    ['a series without its UID', JSON.stringify({ ...page, series: [{ role: 'axial_t2', description: 'x' }] })],
    ['a series of the wrong type', JSON.stringify({ ...page, series: ['2.25.3'] })],
    ['a label of the wrong type', JSON.stringify({ ...page, case_label: 7 })],
  ])('gives null for a plan that is missing or malformed (%s): the boot then waits for the assignment', (_, text) => {
    expect(parseBootPlan(text)).toBeNull();
  });
});

describe('bootPlanOf', () => {
  it("takes the case, study and series of the assignment's API response", () => {
    const assignment = {
      case: {
        label: 'Case 001',
        study_instance_uid: '2.25.9',
        series: [{ role: 'axial_t2', series_instance_uid: '2.25.10', description: 'AX T2', num_instances: 3, ai_segmentation: null }],
      },
    } as unknown as Assignment;
    expect(bootPlanOf(assignment)).toEqual({
      caseLabel: 'Case 001',
      studyInstanceUid: '2.25.9',
      series: [{ role: 'axial_t2', seriesInstanceUid: '2.25.10', description: 'AX T2' }],
    });
  });
});
