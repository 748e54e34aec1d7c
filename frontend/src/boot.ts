/**
 * The reading page's first network work, started by the small entry chunk
 * while the browser still downloads and evaluates the viewer (Cornerstone,
 * vtk.js: most of the page's JavaScript). The assignment, the hung series'
 * metadata and their frames are requested at once; the frames land in the
 * HTTP cache (the server sends them `private, max-age=31536000, immutable`),
 * where Cornerstone's own requests for the same URLs find them.
 *
 * No Cornerstone import here: this module must stay small.
 */
import { ApiClient } from './api/client';
import { buildSeriesStack, fetchSeriesMetadata, type DicomJsonInstance } from './api/dicomweb';
import type { Assignment } from './api/types';
import { middleSliceIndex } from './viewer/geometry';
import { HANGING } from './viewer/hanging';

export interface MountConfig {
  assignmentId: string;
  apiBase: string;
  dicomwebBase: string;
}

/** Reads the mount configuration from #viewer-root's data attributes. */
export function readMountConfig(root: HTMLElement): MountConfig {
  const assignmentId = root.dataset.assignmentId?.trim() ?? '';
  if (!assignmentId) throw new Error('The page has no assignment id (data-assignment-id on #viewer-root)');
  return {
    assignmentId,
    apiBase: root.dataset.apiBase?.trim() || '/api/v1',
    dicomwebBase: root.dataset.dicomwebBase?.trim() || '/dicomweb',
  };
}

/** The Accept header of Cornerstone's WADO-RS frame loader: a cached response is reused only for the same request. */
export const FRAME_ACCEPT = 'multipart/related; type=application/octet-stream; transfer-syntax=*';

/** How many frame requests the boot keeps in flight (of the browser's 6 per host), leaving room for the API. */
const FRAME_CONCURRENCY = 4;

export interface Boot {
  config: MountConfig;
  assignment: Promise<Assignment>;
  /** the DICOM JSON of a hung series, requested at boot; undefined for a series the boot did not request */
  metadata(seriesUid: string): Promise<DicomJsonInstance[]> | undefined;
}

/**
 * The order in which to warm frames: every series' first shown slice, then
 * outward from it (next, previous, next+1, …), the series taking turns.
 */
export function framePrefetchOrder(stacks: ReadonlyArray<{ urls: readonly string[]; start: number }>): string[] {
  const queues = stacks.map(({ urls, start }) => {
    const order: string[] = [];
    const first = Math.min(Math.max(0, start), urls.length - 1);
    if (urls.length === 0) return order;
    order.push(urls[first]!);
    for (let d = 1; order.length < urls.length; d += 1) {
      if (first + d < urls.length) order.push(urls[first + d]!);
      if (first - d >= 0) order.push(urls[first - d]!);
    }
    return order;
  });
  const out: string[] = [];
  for (let i = 0; queues.some((q) => i < q.length); i += 1) for (const q of queues) if (i < q.length) out.push(q[i]!);
  return out;
}

/** Requests the URLs, at most `concurrency` at a time, reading each body to the end so it is cached. */
export async function warmHttpCache(urls: readonly string[], concurrency: number, fetchImpl: typeof fetch = (i, o) => fetch(i, o)): Promise<number> {
  let next = 0;
  let ok = 0;
  const worker = async (): Promise<void> => {
    while (next < urls.length) {
      const url = urls[next++]!;
      try {
        const response = await fetchImpl(url, { credentials: 'same-origin', headers: { Accept: FRAME_ACCEPT } });
        await response.arrayBuffer();
        if (response.ok) ok += 1;
      } catch {
        // Cornerstone requests the frame itself and reports what fails.
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, urls.length) }, worker));
  return ok;
}

/** Starts the assignment, metadata and frame requests; throws only for a page without an assignment id. */
export function bootReading(root: HTMLElement, api: ApiClient = new ApiClient({ apiBase: root.dataset.apiBase || '/api/v1', csrfToken: () => null })): Boot {
  const config = readMountConfig(root);
  const assignment = api.getAssignment(config.assignmentId);
  const metadata = new Map<string, Promise<DicomJsonInstance[]>>();
  const ready = assignment.then((a) => {
    const hung = HANGING.flatMap((hang) => {
      const series = a.case.series.find((s) => s.role === hang.seriesRole);
      return series ? [{ hang, uid: series.series_instance_uid }] : [];
    });
    for (const { uid } of hung) {
      const p = fetchSeriesMetadata(config.dicomwebBase, a.case.study_instance_uid, uid);
      p.catch(() => undefined);
      metadata.set(uid, p);
    }
    return { a, hung };
  });
  ready.catch(() => undefined);
  void ready
    .then(async ({ a, hung }) => {
      const stacks = await Promise.all(
        hung.map(async ({ hang, uid }) => {
          const instances = await metadata.get(uid)!;
          const stack = buildSeriesStack(instances, { origin: window.location.origin, dicomwebBase: config.dicomwebBase, study: a.case.study_instance_uid, series: uid });
          const urls = stack.imageIds.map((id) => id.replace(/^wadors:/, ''));
          return { urls, start: hang.start === 'middle' ? middleSliceIndex(urls.length) : 0 };
        }),
      );
      await warmHttpCache(framePrefetchOrder(stacks), FRAME_CONCURRENCY);
    })
    .catch(() => undefined);
  return {
    config,
    assignment,
    metadata: (uid) => metadata.get(uid),
  };
}
