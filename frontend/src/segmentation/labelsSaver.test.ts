import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { LabelsSaveResponse } from '../api/types';
import { LabelsSaver } from './labelsSaver';

function response(version: number): LabelsSaveResponse {
  return { series_instance_uid: 's', version, phase: 'unaided', source: 'reader', labels_url: '', shape: [1, 1, 2], label_map: {}, voxels_per_label: {}, level_measurements: [], measurement_error: '' };
}

describe('LabelsSaver', () => {
  it('saves each change as a new version on top of the last, one PUT at a time', async () => {
    const calls: Array<[number, number[]]> = [];
    let release: (() => void) | null = null;
    let mask = new Uint8Array([0, 1]);
    const saver = new LabelsSaver(
      {
        putReaderLabels: (_a, _s, base, labels) =>
          new Promise((resolve) => {
            calls.push([base, [...labels]]);
            release = () => resolve(response(base + 1));
          }),
      },
      'a',
      's',
      0,
      () => mask,
    );
    saver.schedule();
    mask = new Uint8Array([4, 4]);
    saver.schedule();
    saver.schedule();
    expect(calls).toEqual([[0, [0, 1]]]);
    expect(saver.describe()).toBe('Saving mask…');
    release!();
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toEqual([[0, [0, 1]], [1, [4, 4]]]);
    release!();
    expect(await saver.flush()).toBe(true);
    expect(saver.describe()).toBe('Mask saved v2');
  });

  it('reports a stale version and stops, never retrying over it', async () => {
    let puts = 0;
    const saver = new LabelsSaver(
      {
        putReaderLabels: async () => {
          puts++;
          throw new ApiError(412, 'stale', { detail: 'stale', current_version: 7 });
        },
      },
      'a',
      's',
      3,
      () => new Uint8Array(2),
    );
    saver.schedule();
    await saver.flush();
    expect(saver.state.kind).toBe('conflict');
    expect(saver.state.kind === 'conflict' && saver.state.message).toContain('newer version (v7)');
    saver.schedule();
    saver.retry();
    await saver.flush();
    expect(puts).toBe(1);
    expect(saver.describe()).toBe('Mask not saved');
    saver.reset(7);
    expect(saver.state.kind).toBe('saved');
    expect(saver.describe()).toBe('Mask saved v7');
  });
});
