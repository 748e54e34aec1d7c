import { describe, expect, it } from 'vitest';
import { bootFrameData, COMPRESSED_FRAME_DATA } from './frameRegistry';
import type { FramePart } from './preview';

const URL_ = 'http://host/dicomweb/studies/1/series/2/instances/3/frames/1';

function store(entries: Record<string, FramePart>): { take: (url: string) => FramePart | undefined; asked: string[] } {
  const frames = new Map(Object.entries(entries));
  const asked: string[] = [];
  return {
    asked,
    take: (url) => {
      asked.push(url);
      const f = frames.get(url);
      frames.delete(url);
      return f;
    },
  };
}

describe('bootFrameData', () => {
  it("answers the loader's compressedFrameData query for a wadors image id with the boot's frame, once", () => {
    // the part at an odd offset of its response, as a multipart body puts it
    const body = new Uint8Array([9, 1, 2, 3, 4, 9]).subarray(1, 5);
    const s = store({ [URL_]: { body, transferSyntax: '1.2.840.10008.1.2.1' } });
    const data = bootFrameData(COMPRESSED_FRAME_DATA, `wadors:${URL_}`, s.take);
    expect(data?.transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
    expect([...(data?.pixelData ?? [])]).toEqual([1, 2, 3, 4]);
    // in a buffer of its own: the decoders view the buffer from byteOffset
    expect(data?.pixelData.byteOffset).toBe(0);
    expect(data?.pixelData.buffer.byteLength).toBe(4);
    // handed over: a second load of the same image goes to the network
    expect(bootFrameData(COMPRESSED_FRAME_DATA, `wadors:${URL_}`, s.take)).toBeUndefined();
  });

  it('stays out of every other query without touching the frames', () => {
    const s = store({ [URL_]: { body: new Uint8Array(4), transferSyntax: '1.2.840.10008.1.2.1' } });
    expect(bootFrameData('imagePlaneModule', `wadors:${URL_}`, s.take)).toBeUndefined();
    expect(bootFrameData(COMPRESSED_FRAME_DATA, `wadouri:${URL_}`, s.take)).toBeUndefined();
    expect(bootFrameData(COMPRESSED_FRAME_DATA, undefined, s.take)).toBeUndefined();
    expect(s.asked).toEqual([]);
  });

  it('leaves a frame without a transfer syntax, or without bytes, to the network', () => {
    const s = store({
      [URL_]: { body: new Uint8Array(4), transferSyntax: null },
      [`${URL_}0`]: { body: new Uint8Array(0), transferSyntax: '1.2.840.10008.1.2.1' },
    });
    expect(bootFrameData(COMPRESSED_FRAME_DATA, `wadors:${URL_}`, s.take)).toBeUndefined();
    expect(bootFrameData(COMPRESSED_FRAME_DATA, `wadors:${URL_}0`, s.take)).toBeUndefined();
    expect(bootFrameData(COMPRESSED_FRAME_DATA, 'wadors:http://host/unknown', s.take)).toBeUndefined();
  });
});
