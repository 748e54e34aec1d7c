/**
 * A first look at a slice before Cornerstone is loaded: the entry chunk
 * decodes an uncompressed frame it fetched anyway (WADO-RS, multipart) and
 * draws it, windowed as Cornerstone will show it, on a plain 2D canvas. The
 * viewer puts that canvas under its viewport and removes it once Cornerstone
 * has rendered the same slice. Compressed, colour or odd frames get no
 * preview: the reader then waits for Cornerstone, as before.
 *
 * No Cornerstone import here: this module is part of the small entry chunk.
 */
import { numbers, firstString, TAG, type DicomJsonInstance } from '../api/dicomweb';

const UNCOMPRESSED = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);

export interface FramePart {
  body: Uint8Array;
  /** the part's (or response's) transfer-syntax parameter; null when it names none */
  transferSyntax: string | null;
}

function param(contentType: string, name: string): string | null {
  const m = new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*("([^"]*)"|[^;\\s]*)`, 'i').exec(contentType);
  if (!m) return null;
  return (m[2] ?? m[1] ?? '').trim() || null;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i += 1) {
    for (let j = 0; j < needle.length; j += 1) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function lastIndexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = haystack.length - needle.length; i >= 0; i -= 1) {
    for (let j = 0; j < needle.length; j += 1) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * The frame bytes of a WADO-RS frame response: the first part of a
 * multipart/related body, or the whole body for a single-part response.
 * Throws for a multipart body it cannot split.
 */
export function framePart(buffer: ArrayBuffer, contentType: string | null): FramePart {
  const bytes = new Uint8Array(buffer);
  const type = contentType ?? '';
  if (!/^\s*multipart\//i.test(type)) return { body: bytes, transferSyntax: param(type, 'transfer-syntax') };
  const boundary = param(type, 'boundary');
  if (!boundary) throw new Error('multipart frame response without a boundary');
  const enc = new TextEncoder();
  const start = indexOf(bytes, enc.encode(`--${boundary}`), 0);
  if (start < 0) throw new Error('multipart frame response without its boundary');
  const headersEnd = indexOf(bytes, enc.encode('\r\n\r\n'), start);
  if (headersEnd < 0) throw new Error('multipart frame response without part headers');
  const headers = new TextDecoder().decode(bytes.subarray(start, headersEnd));
  const end = lastIndexOf(bytes, enc.encode(`\r\n--${boundary}`));
  if (end < headersEnd + 4) throw new Error('multipart frame response without a closing boundary');
  const partType = /content-type:\s*([^\r\n]*)/i.exec(headers)?.[1] ?? '';
  return { body: bytes.subarray(headersEnd + 4, end), transferSyntax: param(partType, 'transfer-syntax') ?? param(type, 'transfer-syntax') };
}

export interface PreviewImage {
  width: number;
  height: number;
  /** RGBA, width × height × 4 */
  rgba: Uint8ClampedArray;
  /** row spacing / column spacing: how much taller than wide one pixel is on screen */
  pixelAspect: number;
}

/** The VOI range Cornerstone starts with: the first WindowCenter/Width, else the image's modality-value range. */
export function initialVoi(instance: DicomJsonInstance, modalityMin: number, modalityMax: number): { lower: number; upper: number } {
  const center = numbers(instance, TAG.WindowCenter)?.[0];
  const width = numbers(instance, TAG.WindowWidth)?.[0];
  if (center !== undefined && width !== undefined && width > 0) return { lower: center - width / 2, upper: center + width / 2 };
  return { lower: modalityMin, upper: modalityMax };
}

/**
 * Windows an uncompressed monochrome frame to 8-bit RGBA, or returns null
 * when the frame is not one this preview can show exactly (compressed, colour,
 * other than 8/16 bits, or a size that does not match Rows × Columns).
 */
export function previewImage(instance: DicomJsonInstance, part: FramePart): PreviewImage | null {
  if (part.transferSyntax !== null && !UNCOMPRESSED.has(part.transferSyntax)) return null;
  const rows = numbers(instance, TAG.Rows)?.[0] ?? 0;
  const columns = numbers(instance, TAG.Columns)?.[0] ?? 0;
  const bits = numbers(instance, TAG.BitsAllocated)?.[0] ?? 0;
  const samples = numbers(instance, TAG.SamplesPerPixel)?.[0] ?? 1;
  const photometric = firstString(instance, TAG.PhotometricInterpretation) ?? 'MONOCHROME2';
  if (rows <= 0 || columns <= 0 || samples !== 1 || (bits !== 8 && bits !== 16)) return null;
  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2') return null;
  const n = rows * columns;
  const body = part.body;
  if (body.length !== n * (bits / 8)) return null;
  const signed = (numbers(instance, TAG.PixelRepresentation)?.[0] ?? 0) === 1;
  const stored = numbers(instance, TAG.BitsStored)?.[0] ?? bits;
  const slope = numbers(instance, TAG.RescaleSlope)?.[0] ?? 1;
  const intercept = numbers(instance, TAG.RescaleIntercept)?.[0] ?? 0;

  const raw = new Float32Array(n);
  if (bits === 8) {
    for (let i = 0; i < n; i += 1) raw[i] = signed ? (body[i]! << 24) >> 24 : body[i]!;
  } else {
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const shift = 32 - Math.min(16, Math.max(1, stored));
    for (let i = 0; i < n; i += 1) {
      const v = view.getUint16(2 * i, true);
      // Only the stored bits count; a signed value extends from its own top bit.
      raw[i] = signed ? (v << shift) >> shift : (v << shift) >>> shift;
    }
  }
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i += 1) {
    const v = raw[i]! * slope + intercept;
    raw[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const { lower, upper } = initialVoi(instance, min, max);
  const scale = upper > lower ? 255 / (upper - lower) : 0;
  const invert = photometric === 'MONOCHROME1';
  const rgba = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i += 1) {
    let g = scale ? (raw[i]! - lower) * scale : raw[i]! >= upper ? 255 : 0;
    if (invert) g = 255 - g;
    rgba[4 * i] = g;
    rgba[4 * i + 1] = g;
    rgba[4 * i + 2] = g;
    rgba[4 * i + 3] = 255;
  }
  const spacing = numbers(instance, TAG.PixelSpacing);
  const pixelAspect = spacing && spacing.length >= 2 && spacing[0]! > 0 && spacing[1]! > 0 ? spacing[0]! / spacing[1]! : 1;
  return { width: columns, height: rows, rgba, pixelAspect };
}

/** The preview on a canvas sized for its physical aspect; CSS (object-fit: contain) fits it to the viewport. */
export function previewCanvas(image: PreviewImage): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.className = 'sr-vp-preview';
  canvas.width = image.width;
  canvas.height = Math.max(1, Math.round(image.height * image.pixelAspect));
  const ctx = canvas.getContext('2d');
  if (!ctx) return canvas;
  const data = new ImageData(image.rgba as Uint8ClampedArray<ArrayBuffer>, image.width, image.height);
  if (canvas.height === image.height) {
    ctx.putImageData(data, 0, 0);
  } else {
    const source = document.createElement('canvas');
    source.width = image.width;
    source.height = image.height;
    source.getContext('2d')?.putImageData(data, 0, 0);
    ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  }
  return canvas;
}
