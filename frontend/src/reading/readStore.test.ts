import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { Protocol, Read, ReadUpdateRequest } from '../api/types';
import { ReadStore, type ReadApi } from './readStore';

const PROTOCOL: Protocol = {
  name: 'test',
  levels: ['L4-L5', 'L5-S1'],
  conditions: [
    {
      key: 'cc',
      label: 'Central canal',
      side: null,
      required: true,
      sub_questions: [],
      scale: { key: null, name: 's', categories: [{ code: '0', label: 'no' }, { code: '1', label: 'yes' }] },
    },
  ],
  measurements: [],
  segmentation: null,
  two_phase: false,
  compare: false,
};

function read(r: Partial<Read> & { version: number }): Read {
  return { phase: 'unaided', submitted: false, elapsed_s: 0, grades: [], measurements: [], ...r };
}

function fakeApi(): ReadApi & { puts: ReadUpdateRequest[]; release: () => void; fail: ApiError | null } {
  let version = 0;
  let pending: Array<() => void> = [];
  const api = {
    puts: [] as ReadUpdateRequest[],
    fail: null as ApiError | null,
    release: () => {
      const p = pending;
      pending = [];
      p.forEach((f) => f());
    },
    putRead: (_id: string, body: ReadUpdateRequest): Promise<Read> =>
      new Promise((resolve, reject) => {
        api.puts.push(body);
        pending.push(() => {
          if (api.fail) reject(api.fail);
          else resolve(read({ version: ++version, grades: body.grades, measurements: body.measurements }));
        });
      }),
    submitRead: async (_id: string, base: number): Promise<Read> => {
      if (base !== version) throw new ApiError(412, 'stale', { detail: 'stale', current: read({ version }) });
      return read({ version: version + 1, submitted: true });
    },
  };
  return api;
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('ReadStore autosave', () => {
  it('sends one PUT at a time and coalesces edits made meanwhile into the next', async () => {
    const api = fakeApi();
    const store = new ReadStore({ api, assignmentId: 'a', protocol: PROTOCOL, read: read({ version: 0 }), elapsedS: () => 12, editable: true });
    store.setGrade('L4-L5', 'cc', '1');
    store.setGrade('L5-S1', 'cc', '0');
    store.setGrade('L5-S1', 'cc', '1');
    expect(api.puts).toHaveLength(1);
    expect(store.save.kind).toBe('saving');
    api.release();
    await tick();
    expect(api.puts).toHaveLength(2);
    expect(api.puts[1]).toEqual({
      base_version: 1,
      grades: [
        { level: 'L4-L5', condition: 'cc', value: '1' },
        { level: 'L5-S1', condition: 'cc', value: '1' },
      ],
      measurements: [],
      elapsed_s: 12,
    });
    api.release();
    await store.flush();
    expect(store.version).toBe(2);
    expect(store.save.kind).toBe('saved');
    expect(store.missing()).toEqual([]);
  });

  it('stops at a stale version and keeps the read read-only until the latest is loaded', async () => {
    const api = fakeApi();
    const store = new ReadStore({ api, assignmentId: 'a', protocol: PROTOCOL, read: read({ version: 3 }), elapsedS: () => 0, editable: true });
    const current = read({ version: 5, grades: [{ level: 'L4-L5', condition: 'cc', value: '0' }] });
    api.fail = new ApiError(412, 'stale', { detail: 'stale', current });
    store.setGrade('L4-L5', 'cc', '1');
    api.release();
    await tick();
    expect(store.save.kind).toBe('conflict');
    expect(store.readOnly).toBe(true);
    expect(store.setGrade('L5-S1', 'cc', '1')).toBe(false);
    expect(api.puts).toHaveLength(1);
    store.applyRead(current);
    expect(store.version).toBe(5);
    expect(store.grade('L4-L5', 'cc')).toBe('0');
    expect(store.readOnly).toBe(false);
  });

  it('a refused submit keeps the server\'s missing list', async () => {
    const api = fakeApi();
    api.submitRead = async () => {
      throw new ApiError(400, 'missing', { detail: 'missing', missing: [{ level: 'L5-S1', condition: 'cc' }] });
    };
    const store = new ReadStore({ api, assignmentId: 'a', protocol: PROTOCOL, read: read({ version: 0 }), elapsedS: () => 0, editable: true });
    const submitting = store.submit();
    await tick();
    api.release();
    expect(await submitting).toBeNull();
    expect([...store.serverMissing]).toEqual(['L5-S1/cc']);
    expect(store.save).toEqual({ kind: 'error', retry: false, message: 'Not submitted: still missing L5-S1/cc.' });
    expect(store.submitted).toBe(false);
  });
});
