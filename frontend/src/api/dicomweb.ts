import { ApiError, errorMessage } from './client';
import { sortImageIdsBySliceNormal, type SliceGeometry } from '../viewer/geometry';

/** One instance's DICOM JSON (PS3.18 F.2): tag "GGGGEEEE" -> {vr, Value?, BulkDataURI?}. */
export type DicomJsonElement = {
  vr?: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
};
export type DicomJsonInstance = Record<string, DicomJsonElement>;

export const TAG = {
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  InstanceNumber: '00200013',
  ImagePositionPatient: '00200032',
  ImageOrientationPatient: '00200037',
  Rows: '00280010',
  Columns: '00280011',
  PixelSpacing: '00280030',
  SamplesPerPixel: '00280002',
  PhotometricInterpretation: '00280004',
  BitsAllocated: '00280100',
  BitsStored: '00280101',
  PixelRepresentation: '00280103',
  WindowCenter: '00281050',
  WindowWidth: '00281051',
  RescaleIntercept: '00281052',
  RescaleSlope: '00281053',
  PixelData: '7FE00010',
} as const;

function element(instance: DicomJsonInstance, tag: string): DicomJsonElement | undefined {
  // Tags are upper-case hex by the standard; accept lower-case from lenient servers.
  return instance[tag] ?? instance[tag.toLowerCase()];
}

export function firstString(instance: DicomJsonInstance, tag: string): string | null {
  const v = element(instance, tag)?.Value?.[0];
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null;
}

export function numbers(instance: DicomJsonInstance, tag: string): number[] | null {
  const values = element(instance, tag)?.Value;
  if (!values || values.length === 0) return null;
  const out = values.map((v) => (typeof v === 'number' ? v : Number(v)));
  return out.every((x) => Number.isFinite(x)) ? out : null;
}

export interface SeriesStack {
  /** wadors: imageIds sorted along the slice normal */
  imageIds: string[];
  /** imageId -> SOPInstanceUID */
  sopByImageId: Map<string, string>;
  /** Rows (y) and Columns (x) of the first image; 0 when absent */
  rows: number;
  columns: number;
  /**
   * SOPInstanceUIDs in the server's spatial order, the z order of the labels
   * endpoints: by each slice's own position along its normal
   * (ImagePositionPatient · (row × column)), then InstanceNumber.
   */
  spatialSops: string[];
}

/** The server's slice order (imaging.selectors.series_instances): position along each slice's own normal, then InstanceNumber; unknown positions last. */
export function spatialOrder(slices: ReadonlyArray<{ sop: string; ipp: number[] | null; iop: number[] | null; instanceNumber: number | null }>): string[] {
  const keyed = slices.map((s, index) => {
    let position: number | null = null;
    if (s.ipp && s.ipp.length === 3 && s.iop && s.iop.length === 6) {
      const [r0, r1, r2, c0, c1, c2] = s.iop as [number, number, number, number, number, number];
      const n = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
      position = n[0]! * s.ipp[0]! + n[1]! * s.ipp[1]! + n[2]! * s.ipp[2]!;
    }
    return { sop: s.sop, position, instance: s.instanceNumber, index };
  });
  keyed.sort((a, b) => {
    if (a.position !== null && b.position !== null && a.position !== b.position) return a.position - b.position;
    if (a.position === null && b.position !== null) return 1;
    if (a.position !== null && b.position === null) return -1;
    if (a.instance !== null && b.instance !== null && a.instance !== b.instance) return a.instance - b.instance;
    return a.index - b.index;
  });
  return keyed.map((k) => k.sop);
}

/** The scheme of the WADO-RS image ids: the DICOM image loader's wadors loader. */
const WADORS_SCHEME = 'wadors:';

/** The WADO-RS frame URL of a `wadors:` image id; null for an image id of another scheme. */
export function frameUrlOf(imageId: string): string | null {
  return imageId.startsWith(WADORS_SCHEME) ? imageId.slice(WADORS_SCHEME.length) : null;
}

/** The WADO-RS frame URL Cornerstone fetches (prefixed with "wadors:"). */
export function frameImageId(origin: string, dicomwebBase: string, study: string, series: string, sop: string): string {
  const base = dicomwebBase.replace(/\/+$/, '');
  return `${WADORS_SCHEME}${origin}${base}/studies/${study}/series/${series}/instances/${sop}/frames/1`;
}

/**
 * Builds the sorted imageIds of a series from its DICOM JSON metadata.
 * `register` receives each (imageId, instance) so the caller can hand the
 * metadata to the image loader.
 */
export function buildSeriesStack(
  instances: DicomJsonInstance[],
  ids: { origin: string; dicomwebBase: string; study: string; series: string },
  register: (imageId: string, instance: DicomJsonInstance) => void = () => undefined,
): SeriesStack {
  const sopByImageId = new Map<string, string>();
  const geometry: SliceGeometry[] = [];
  const spatial: Array<{ sop: string; ipp: number[] | null; iop: number[] | null; instanceNumber: number | null }> = [];
  for (const instance of instances) {
    const sop = firstString(instance, TAG.SOPInstanceUID);
    if (!sop) continue;
    const imageId = frameImageId(ids.origin, ids.dicomwebBase, ids.study, ids.series, sop);
    if (sopByImageId.has(imageId)) continue;
    sopByImageId.set(imageId, sop);
    register(imageId, instance);
    const instanceNumber = numbers(instance, TAG.InstanceNumber)?.[0] ?? null;
    spatial.push({ sop, ipp: numbers(instance, TAG.ImagePositionPatient), iop: numbers(instance, TAG.ImageOrientationPatient), instanceNumber });
    geometry.push({
      imageId,
      imagePositionPatient: numbers(instance, TAG.ImagePositionPatient),
      imageOrientationPatient: numbers(instance, TAG.ImageOrientationPatient),
      instanceNumber,
    });
  }
  const first = instances[0];
  const rows = first ? numbers(first, TAG.Rows)?.[0] ?? 0 : 0;
  const columns = first ? numbers(first, TAG.Columns)?.[0] ?? 0 : 0;
  return { imageIds: sortImageIdsBySliceNormal(geometry), sopByImageId, rows, columns, spatialSops: spatialOrder(spatial) };
}

/** GET {dicomweb}/studies/{study}/series/{series}/metadata */
export async function fetchSeriesMetadata(
  dicomwebBase: string,
  study: string,
  series: string,
  fetchImpl: typeof fetch = (input, init) => fetch(input, init),
): Promise<DicomJsonInstance[]> {
  const url = `${dicomwebBase.replace(/\/+$/, '')}/studies/${study}/series/${series}/metadata`;
  let response: Response;
  try {
    response = await fetchImpl(url, { credentials: 'same-origin', headers: { Accept: 'application/dicom+json' } });
  } catch (err) {
    const why = err instanceof Error && err.message ? `: ${err.message}` : '';
    throw new ApiError(0, `Network error while loading series metadata${why}`);
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    throw new ApiError(response.status, `Series metadata: ${errorMessage(response.status, body)}`, body);
  }
  if (!Array.isArray(body)) {
    throw new ApiError(response.status, 'Series metadata is not a DICOM JSON array');
  }
  return body as DicomJsonInstance[];
}
