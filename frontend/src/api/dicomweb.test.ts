import { describe, expect, it } from 'vitest';
import { buildSeriesStack, frameImageId, spatialOrder, type DicomJsonInstance } from './dicomweb';

function instance(sop: string, z: number, instanceNumber: number): DicomJsonInstance {
  return {
    '00080018': { vr: 'UI', Value: [sop] },
    '00200013': { vr: 'IS', Value: [instanceNumber] },
    '00200032': { vr: 'DS', Value: [0, 0, z] },
    '00200037': { vr: 'DS', Value: [1, 0, 0, 0, 1, 0] },
    '00280010': { vr: 'US', Value: [256] },
    '00280011': { vr: 'US', Value: [192] },
    '7FE00010': { vr: 'OW', BulkDataURI: 'http://x/bulk' },
  };
}

const IDS = { origin: 'http://host:8000', dicomwebBase: '/dicomweb/', study: '1.2.3', series: '1.2.3.4' };

describe('frameImageId', () => {
  it('builds the wadors: frame URL with the page origin', () => {
    expect(frameImageId('http://h', '/dicomweb', 'st', 'se', 'sop')).toBe(
      'wadors:http://h/dicomweb/studies/st/series/se/instances/sop/frames/1',
    );
  });
});

describe('buildSeriesStack', () => {
  it('sorts along the normal, maps imageIds to SOPs and registers each instance once', () => {
    const registered: string[] = [];
    const stack = buildSeriesStack(
      [instance('s-top', 20, 1), instance('s-bottom', -20, 2), instance('s-mid', 0, 3), instance('s-mid', 0, 3)],
      IDS,
      (imageId) => registered.push(imageId),
    );
    const id = (sop: string): string => `wadors:http://host:8000/dicomweb/studies/1.2.3/series/1.2.3.4/instances/${sop}/frames/1`;
    expect(stack.imageIds).toEqual([id('s-bottom'), id('s-mid'), id('s-top')]);
    expect(registered).toEqual([id('s-top'), id('s-bottom'), id('s-mid')]);
    expect(stack.sopByImageId.get(id('s-mid'))).toBe('s-mid');
    expect(stack.rows).toBe(256);
    expect(stack.columns).toBe(192);
  });

  it('skips instances without a SOPInstanceUID', () => {
    const stack = buildSeriesStack([{ '00200013': { Value: [1] } }], IDS);
    expect(stack.imageIds).toEqual([]);
    expect(stack.rows).toBe(0);
  });
});

describe('spatialOrder', () => {
  it('orders by each slice\'s own normal (tilted blocks too), then InstanceNumber, unknown positions last', () => {
    const axial = [1, 0, 0, 0, 1, 0];
    const c = Math.cos(0.2);
    const s = Math.sin(0.2);
    const tilted = [1, 0, 0, 0, c, s]; // normal (0, -s, c)
    expect(
      spatialOrder([
        { sop: 'top', ipp: [0, 0, 50], iop: axial, instanceNumber: 1 },
        { sop: 'none', ipp: null, iop: axial, instanceNumber: 0 },
        { sop: 'tilt', ipp: [0, 10, 20], iop: tilted, instanceNumber: 3 }, // -10 s + 20 c = 17.6
        { sop: 'low', ipp: [0, 0, 10], iop: axial, instanceNumber: 2 },
        { sop: 'same-b', ipp: [0, 0, 30], iop: axial, instanceNumber: 9 },
        { sop: 'same-a', ipp: [0, 0, 30], iop: axial, instanceNumber: 8 },
      ]),
    ).toEqual(['low', 'tilt', 'same-a', 'same-b', 'top', 'none']);
  });
});
