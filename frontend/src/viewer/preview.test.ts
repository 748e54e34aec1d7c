import { describe, expect, it } from 'vitest';
import type { DicomJsonInstance } from '../api/dicomweb';
import { framePart, initialVoi, previewImage, type FramePart } from './preview';

function instance(values: Record<string, { vr: string; Value: (string | number)[] }>): DicomJsonInstance {
  return values as unknown as DicomJsonInstance;
}

const US = (v: number) => ({ vr: 'US', Value: [v] });
const DS = (...v: number[]) => ({ vr: 'DS', Value: v });
const CS = (v: string) => ({ vr: 'CS', Value: [v] });

/** A 2 x 2 monochrome image header; overrides replace single elements. */
function header(overrides: Record<string, { vr: string; Value: (string | number)[] }> = {}): DicomJsonInstance {
  return instance({
    '00280010': US(2), // Rows
    '00280011': US(2), // Columns
    '00280002': US(1), // SamplesPerPixel
    '00280004': CS('MONOCHROME2'),
    '00280100': US(16), // BitsAllocated
    '00280101': US(16), // BitsStored
    '00280103': US(0), // PixelRepresentation
    ...overrides,
  });
}

function u16(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint16(2 * i, v & 0xffff, true));
  return out;
}

const raw = (body: Uint8Array, transferSyntax: string | null = '1.2.840.10008.1.2.1'): FramePart => ({ body, transferSyntax });
const grey = (rgba: Uint8ClampedArray) => Array.from({ length: rgba.length / 4 }, (_, i) => rgba[4 * i]);

describe('framePart', () => {
  const enc = new TextEncoder();
  const multipart = (payload: Uint8Array, boundary = 'b0undary', partType = 'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1') => {
    const head = enc.encode(`--${boundary}\r\nContent-Type: ${partType}\r\n\r\n`);
    const tail = enc.encode(`\r\n--${boundary}--\r\n`);
    const all = new Uint8Array(head.length + payload.length + tail.length);
    all.set(head);
    all.set(payload, head.length);
    all.set(tail, head.length + payload.length);
    return all.buffer;
  };

  it('takes the first part of a multipart/related body, with its transfer syntax', () => {
    // The payload holds CR LF and the boundary's first bytes: only the closing delimiter ends it.
    const payload = enc.encode('ab\r\n--b0und\r\ncd');
    const part = framePart(multipart(payload), 'multipart/related; type="application/octet-stream"; boundary=b0undary');
    expect(new TextDecoder().decode(part.body)).toBe('ab\r\n--b0und\r\ncd');
    expect(part.transferSyntax).toBe('1.2.840.10008.1.2.1');
  });

  it('reads a quoted boundary and falls back to the response transfer syntax', () => {
    const body = multipart(enc.encode('xy'), 'q-b', 'application/octet-stream');
    const part = framePart(body, 'multipart/related; boundary="q-b"; transfer-syntax=1.2.840.10008.1.2');
    expect(new TextDecoder().decode(part.body)).toBe('xy');
    expect(part.transferSyntax).toBe('1.2.840.10008.1.2');
  });

  it('returns a single-part body whole', () => {
    const part = framePart(u16(1, 2).buffer as ArrayBuffer, 'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1');
    expect(Array.from(part.body)).toEqual([1, 0, 2, 0]);
    expect(framePart(new ArrayBuffer(2), null).transferSyntax).toBeNull();
  });

  it('throws for a multipart body it cannot split', () => {
    expect(() => framePart(new ArrayBuffer(4), 'multipart/related')).toThrow('without a boundary');
    expect(() => framePart(enc.encode('no delimiter here').buffer, 'multipart/related; boundary=zz')).toThrow('without its boundary');
    expect(() => framePart(enc.encode('--zz\r\nContent-Type: x').buffer, 'multipart/related; boundary=zz')).toThrow('without part headers');
    expect(() => framePart(enc.encode('--zz\r\n\r\nabc').buffer, 'multipart/related; boundary=zz')).toThrow('closing boundary');
  });
});

describe('initialVoi', () => {
  it('uses the first window of the header, else the modality range', () => {
    expect(initialVoi(header({ '00281050': DS(100, 50), '00281051': DS(40, 10) }), 0, 1000)).toEqual({ lower: 80, upper: 120 });
    expect(initialVoi(header(), -5, 70)).toEqual({ lower: -5, upper: 70 });
    expect(initialVoi(header({ '00281050': DS(100), '00281051': DS(0) }), 1, 2)).toEqual({ lower: 1, upper: 2 });
  });
});

describe('previewImage', () => {
  it('windows unsigned 16-bit pixels with the header window', () => {
    const image = previewImage(header({ '00281050': DS(100), '00281051': DS(200) }), raw(u16(0, 40, 200, 300)));
    expect(image).not.toBeNull();
    expect(image!.width).toBe(2);
    expect(image!.height).toBe(2);
    expect(grey(image!.rgba)).toEqual([0, 51, 255, 255]);
    expect(Array.from(image!.rgba.slice(0, 4))).toEqual([0, 0, 0, 255]);
  });

  it('applies rescale slope and intercept, and the min-max range without a window', () => {
    const image = previewImage(header({ '00281053': DS(2), '00281052': DS(-10) }), raw(u16(5, 10, 15, 55)));
    // modality values 0, 10, 20, 100: the range 0..100
    expect(grey(image!.rgba)).toEqual([0, 26, 51, 255]);
  });

  it('reads signed values from their stored bits and inverts MONOCHROME1', () => {
    const signed = header({ '00280101': US(12), '00280103': US(1), '00280004': CS('MONOCHROME1') });
    // 0x0FFF is -1 in 12 stored bits; the high bits hold garbage that must be ignored.
    const image = previewImage(signed, raw(u16(0xf7ff, 0x0fff, 0x0000, 0x0001)));
    // values 2047, -1, 0, 1: range -1..2047, inverted
    expect(grey(image!.rgba)).toEqual([0, 255, 255, 255]);
  });

  it('reads 8-bit frames', () => {
    const image = previewImage(header({ '00280100': US(8), '00280101': US(8) }), raw(new Uint8Array([0, 64, 128, 255])));
    expect(grey(image!.rgba)).toEqual([0, 64, 128, 255]);
  });

  it('gives the physical pixel aspect', () => {
    const image = previewImage(header({ '00280030': DS(0.5, 0.25) }), raw(u16(0, 1, 2, 3)));
    expect(image!.pixelAspect).toBe(2);
  });

  it('returns null for frames it cannot show exactly', () => {
    const ok = u16(0, 1, 2, 3);
    expect(previewImage(header(), raw(ok, '1.2.840.10008.1.2.4.50'))).toBeNull(); // JPEG baseline
    expect(previewImage(header(), raw(ok.subarray(0, 6)))).toBeNull(); // shorter than Rows x Columns
    expect(previewImage(header({ '00280004': CS('RGB'), '00280002': US(3) }), raw(ok))).toBeNull();
    expect(previewImage(header({ '00280100': US(32) }), raw(ok))).toBeNull();
    expect(previewImage(header({ '00280010': US(0) }), raw(new Uint8Array()))).toBeNull();
    expect(previewImage(header({ '00280004': CS('PALETTE COLOR') }), raw(ok))).toBeNull();
  });
});
