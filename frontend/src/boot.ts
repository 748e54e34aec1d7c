/**
 * The reading page's first network work, started by the small entry chunk
 * while the browser still downloads and evaluates the viewer (Cornerstone,
 * vtk.js: most of the page's JavaScript). The assignment, the hung series'
 * metadata and their frames are requested at once; the frames land in the
 * HTTP cache (the server sends them `private, max-age=31536000, immutable`),
 * where Cornerstone's own requests for the same URLs find them. Each hung
 * series' shown slice is drawn at once as a preview (viewer/preview.ts) in a
 * skeleton of the page, so the reader sees the images before Cornerstone has
 * even been parsed.
 *
 * No Cornerstone import here: this module must stay small.
 */
import { ApiClient } from './api/client';
import { buildSeriesStack, fetchSeriesMetadata, firstString, TAG, type DicomJsonInstance } from './api/dicomweb';
import type { Assignment } from './api/types';
import { middleSliceIndex } from './viewer/geometry';
import { HANGING } from './viewer/hanging';
import { framePart, previewCanvas, previewImage } from './viewer/preview';
import { h } from './ui/dom';

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
  /** the preview canvas of a hung series' shown slice (null: none could be drawn); undefined for a series the boot did not request */
  preview(seriesUid: string): PreviewPromise | undefined;
  /** the viewer has taken the page over: the boot stops touching its DOM */
  mount(): void;
  /** resolves once every preview is drawn or given up (never rejects) */
  previewsSettled: Promise<void>;
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

/** A hung series' preview: the shown slice drawn by the entry chunk, or null when it cannot be drawn exactly. */
export type PreviewPromise = Promise<HTMLCanvasElement | null>;

/** Fetches one frame and draws it as a preview; the response lands in the HTTP cache like the warmed ones. */
async function fetchPreview(url: string, instance: DicomJsonInstance | undefined): PreviewPromise {
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: FRAME_ACCEPT } });
  const buffer = await response.arrayBuffer();
  if (!response.ok || !instance) return null;
  const image = previewImage(instance, framePart(buffer, response.headers.get('Content-Type')));
  return image ? previewCanvas(image) : null;
}

/**
 * The page's layout until the viewer mounts: the viewports (each with its
 * preview once drawn) and an empty sidebar, the same boxes the viewer builds.
 */
function renderSkeleton(root: HTMLElement, a: Assignment, previews: Map<string, PreviewPromise>, mounted: () => boolean): void {
  const top = Math.max(0, root.getBoundingClientRect().top + window.scrollY);
  root.style.setProperty('--sr-top', `${Math.round(top)}px`);
  root.classList.add('sr-root');
  const sections: HTMLElement[] = [];
  for (const hang of HANGING) {
    const series = a.case.series.find((s) => s.role === hang.seriesRole);
    if (!series && !hang.always) continue;
    const body = h('div', { class: 'sr-vp-body' });
    const preview = series ? previews.get(series.series_instance_uid) : undefined;
    void preview?.then((canvas) => {
      if (canvas && !mounted()) body.append(canvas);
    });
    sections.push(
      h(
        'section',
        { class: 'sr-vp', 'data-role': hang.role },
        h('header', { class: 'sr-vp-header' }, h('span', { class: 'sr-vp-title' }, series?.description ? `${hang.heading} · ${series.description}` : hang.heading)),
        body,
      ),
    );
  }
  root.replaceChildren(
    h(
      'div',
      { class: 'sr-app sr-skeleton' },
      h('div', { class: 'sr-topbar' }, h('span', { class: 'sr-case' }, a.case.label)),
      h('div', { class: 'sr-toolbar' }),
      h('div', { class: 'sr-main' }, h('div', { class: `sr-viewports sr-viewports-${sections.length}` }, ...sections), h('aside', { class: 'sr-sidebar' })),
    ),
  );
}

/**
 * Starts the assignment, metadata and frame requests, draws each hung
 * series' shown slice as a preview in a skeleton of the page (until the
 * viewer mounts); throws only for a page without an assignment id.
 */
export function bootReading(root: HTMLElement, api: ApiClient = new ApiClient({ apiBase: root.dataset.apiBase || '/api/v1', csrfToken: () => null })): Boot {
  const config = readMountConfig(root);
  const assignment = api.getAssignment(config.assignmentId);
  const metadata = new Map<string, Promise<DicomJsonInstance[]>>();
  const previews = new Map<string, PreviewPromise>();
  let mounted = false;
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
    const stacks = hung.map(({ hang, uid }) => {
      const stack = metadata.get(uid)!.then((instances) => {
        const built = buildSeriesStack(instances, { origin: window.location.origin, dicomwebBase: config.dicomwebBase, study: a.case.study_instance_uid, series: uid });
        const urls = built.imageIds.map((id) => id.replace(/^wadors:/, ''));
        const start = hang.start === 'middle' ? middleSliceIndex(urls.length) : 0;
        const sop = built.sopByImageId.get(built.imageIds[start] ?? '');
        const instance = instances.find((i) => firstString(i, TAG.SOPInstanceUID) === sop);
        return { urls, start, instance };
      });
      const preview: PreviewPromise = stack.then(({ urls, start, instance }) => (urls[start] ? fetchPreview(urls[start], instance) : null)).catch(() => null);
      previews.set(uid, preview);
      return stack;
    });
    if (!mounted && !root.querySelector('.sr-app')) renderSkeleton(root, a, previews, () => mounted);
    return stacks;
  });
  ready.catch(() => undefined);
  void ready
    .then(async (pending) => {
      const stacks = await Promise.all(pending);
      // The shown slices are fetched by their previews; warm the rest behind them.
      await Promise.all([...previews.values()]);
      const shown = new Set(stacks.map((s) => s.urls[s.start]));
      await warmHttpCache(
        framePrefetchOrder(stacks).filter((url) => !shown.has(url)),
        FRAME_CONCURRENCY,
      );
    })
    .catch(() => undefined);
  const previewsSettled = ready.then(
    () => Promise.all([...previews.values()]).then(() => undefined),
    () => undefined,
  );
  return {
    config,
    assignment,
    previewsSettled,
    metadata: (uid) => metadata.get(uid),
    preview: (uid) => previews.get(uid),
    mount: () => {
      mounted = true;
    },
  };
}
