/**
 * The reading page's first network work, started by the small entry chunk
 * while the browser still downloads and evaluates the viewer (Cornerstone,
 * vtk.js: most of the page's JavaScript). The assignment, the hung series'
 * metadata and their frames are requested at once. The boot keeps each
 * frame's bytes until the viewer takes them (viewer/frameStore.ts: the
 * workspace waits for a frame still on its way and hands the bytes to
 * Cornerstone's loader, viewer/frameRegistry.ts, so it requests none of them
 * again); the responses also land in the HTTP cache (the server sends them
 * `private, max-age=31536000, immutable`) for a frame the viewer requests
 * after all (one the boot could not read, or a reload). Each hung
 * series' shown slice is drawn at once as a preview (viewer/preview.ts) in a
 * skeleton of the page, so the reader sees the images before Cornerstone has
 * even been parsed.
 *
 * No Cornerstone import here: this module must stay small.
 */
import { ApiClient, isRecord } from './api/client';
import { buildSeriesStack, fetchSeriesMetadata, firstString, frameUrlOf, TAG, type DicomJsonInstance } from './api/dicomweb';
import type { Assignment } from './api/types';
import { middleSliceIndex } from './viewer/geometry';
import { HANGING } from './viewer/hanging';
import { FrameStore } from './viewer/frameStore';
import { framePart, previewCanvas, previewImage, type FramePart } from './viewer/preview';
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

/**
 * What the boot needs to draw its previews: the case, the study and the
 * series the page hangs. The page names them (#sr-boot-plan, written by the
 * reading page's template), so the previews start when the entry runs rather
 * than when the assignment's API response, the page's slowest, arrives.
 */
export interface BootPlan {
  caseLabel: string;
  studyInstanceUid: string;
  series: Array<{ role: string; seriesInstanceUid: string; description: string }>;
}

const isString = (v: unknown): v is string => typeof v === 'string';

/** The page's boot plan (the JSON of #sr-boot-plan), or null when it is missing or not of the expected shape. */
export function parseBootPlan(text: string | null | undefined): BootPlan | null {
  if (!text) return null;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(data)) return null;
  const { case_label: caseLabel, study_instance_uid: studyInstanceUid, series } = data;
  if (!isString(caseLabel) || !isString(studyInstanceUid) || !studyInstanceUid || !Array.isArray(series)) return null;
  const parsed: BootPlan['series'] = [];
  for (const item of series as unknown[]) {
    if (!isRecord(item)) return null;
    const { role, series_instance_uid: uid, description } = item;
    if (!isString(role) || !isString(uid) || !uid || !isString(description)) return null;
    parsed.push({ role, seriesInstanceUid: uid, description });
  }
  return { caseLabel, studyInstanceUid, series: parsed };
}

/** The boot plan of an assignment's API response (a page without one of its own). */
export function bootPlanOf(a: Assignment): BootPlan {
  return {
    caseLabel: a.case.label,
    studyInstanceUid: a.case.study_instance_uid,
    series: a.case.series.map((s) => ({ role: s.role, seriesInstanceUid: s.series_instance_uid, description: s.description })),
  };
}

/** The Accept header of Cornerstone's WADO-RS frame loader: a cached response is reused only for the same request. */
export const FRAME_ACCEPT = 'multipart/related; type=application/octet-stream; transfer-syntax=*';

/**
 * The boot hands all its frame requests to the browser at once, at low
 * priority: the network stack keeps downloading while the main thread is busy
 * evaluating the workspace (a loop on the main thread that starts each request
 * when another ends would stall for that long), and the page's own API
 * requests, at the default priority, still go first.
 */
const FRAME_PRIORITY: RequestPriority = 'low';

export interface Boot {
  config: MountConfig;
  assignment: Promise<Assignment>;
  /** the DICOM JSON of a hung series, requested at boot; undefined for a series the boot did not request */
  metadata(seriesUid: string): Promise<DicomJsonInstance[]> | undefined;
  /** the preview canvas of a hung series' shown slice (null: none could be drawn); undefined for a series the boot did not request */
  preview(seriesUid: string): PreviewPromise | undefined;
  /**
   * The hung series' frames the boot requests (URLs without "wadors:"): each
   * one's bytes once received, handed over once (`take`), and a promise for
   * each still on its way (`settled`).
   */
  frames: FrameStore;
  /** the viewer has taken the page over: the boot stops touching its DOM */
  mount(): void;
  /** resolves once every preview is drawn or given up (never rejects) */
  previewsSettled: Promise<void>;
  /**
   * Lets the boot request the hung series' other frames once the previews
   * are drawn (the entry calls it after asking for the workspace's chunks,
   * whose download matters more: issuing some forty requests holds the main
   * thread for tens of milliseconds).
   */
  fetchRemainingFrames(): void;
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

/** A frame response's bytes (the first part of a multipart body), or null for an error or a body that cannot be split. */
async function readFrame(response: Response): Promise<FramePart | null> {
  const buffer = await response.arrayBuffer();
  if (!response.ok) return null;
  try {
    return framePart(buffer, response.headers.get('Content-Type'));
  } catch {
    return null;
  }
}

/**
 * Requests the frame URLs, at most `concurrency` at a time (all at once when
 * omitted), reading each body to the end (so it is also in the HTTP cache),
 * and passes each URL to `settle` with its frame (null when the request failed
 * or the body could not be read); resolves with how many frames were read.
 */
export async function prefetchFrames(
  urls: readonly string[],
  settle: (url: string, frame: FramePart | null) => void,
  { concurrency = urls.length, priority = 'auto', fetchImpl = (i, o) => fetch(i, o) }: { concurrency?: number; priority?: RequestPriority; fetchImpl?: typeof fetch } = {},
): Promise<number> {
  let next = 0;
  let kept = 0;
  const worker = async (): Promise<void> => {
    while (next < urls.length) {
      const url = urls[next++]!;
      let frame: FramePart | null = null;
      try {
        frame = await readFrame(await fetchImpl(url, { credentials: 'same-origin', headers: { Accept: FRAME_ACCEPT }, priority }));
      } catch {
        // Cornerstone requests the frame itself and reports what fails.
      }
      if (frame) kept += 1;
      settle(url, frame);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, urls.length) }, worker));
  return kept;
}

/** A hung series' preview: the shown slice drawn by the entry chunk, or null when it cannot be drawn exactly. */
export type PreviewPromise = Promise<HTMLCanvasElement | null>;

/** Fetches one frame, settles it in the store like the prefetched ones, and draws it as a preview. */
async function fetchPreview(url: string, instance: DicomJsonInstance | undefined, store: FrameStore): PreviewPromise {
  let frame: FramePart | null = null;
  try {
    frame = await readFrame(await fetch(url, { credentials: 'same-origin', headers: { Accept: FRAME_ACCEPT } }));
  } finally {
    store.settle(url, frame);
  }
  const image = frame && instance ? previewImage(instance, frame) : null;
  return image ? previewCanvas(image) : null;
}

/**
 * The page's layout until the viewer mounts: the viewports (each with its
 * preview once drawn) and an empty sidebar, the same boxes the viewer builds.
 */
function renderSkeleton(root: HTMLElement, plan: BootPlan, previews: Map<string, PreviewPromise>, mounted: () => boolean): void {
  const top = Math.max(0, root.getBoundingClientRect().top + window.scrollY);
  root.style.setProperty('--sr-top', `${Math.round(top)}px`);
  root.classList.add('sr-root');
  const sections: HTMLElement[] = [];
  for (const hang of HANGING) {
    const series = plan.series.find((s) => s.role === hang.seriesRole);
    if (!series && !hang.always) continue;
    const body = h('div', { class: 'sr-vp-body' });
    const preview = series ? previews.get(series.seriesInstanceUid) : undefined;
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
      h('div', { class: 'sr-topbar' }, h('span', { class: 'sr-case' }, plan.caseLabel)),
      h('div', { class: 'sr-toolbar' }),
      h('div', { class: 'sr-main' }, h('div', { class: `sr-viewports sr-viewports-${sections.length}` }, ...sections), h('aside', { class: 'sr-sidebar' })),
    ),
  );
}

/**
 * Starts the assignment, metadata and frame requests, draws each hung
 * series' shown slice as a preview in a skeleton of the page (until the
 * viewer mounts); throws only for a page without an assignment id. The hung
 * series are the page's boot plan's (`plan`, read from #sr-boot-plan when not
 * given), else the assignment's once it arrives.
 */
export function bootReading(
  root: HTMLElement,
  api: ApiClient = new ApiClient({ apiBase: root.dataset.apiBase || '/api/v1', csrfToken: () => null }),
  plan: BootPlan | null = parseBootPlan(root.ownerDocument.getElementById('sr-boot-plan')?.textContent),
): Boot {
  const config = readMountConfig(root);
  const assignment = api.getAssignment(config.assignmentId);
  const metadata = new Map<string, Promise<DicomJsonInstance[]>>();
  const previews = new Map<string, PreviewPromise>();
  const frames = new FrameStore();
  let mounted = false;
  let fetchRemainingFrames = (): void => undefined;
  const remainingAllowed = new Promise<void>((resolve) => {
    fetchRemainingFrames = resolve;
  });
  const ready = (plan ? Promise.resolve(plan) : assignment.then(bootPlanOf)).then((hungPlan) => {
    const hung = HANGING.flatMap((hang) => {
      const series = hungPlan.series.find((s) => s.role === hang.seriesRole);
      return series ? [{ hang, uid: series.seriesInstanceUid }] : [];
    });
    for (const { uid } of hung) {
      const p = fetchSeriesMetadata(config.dicomwebBase, hungPlan.studyInstanceUid, uid);
      p.catch(() => undefined);
      metadata.set(uid, p);
    }
    const stacks = hung.map(({ hang, uid }) => {
      const stack = metadata.get(uid)!.then((instances) => {
        const built = buildSeriesStack(instances, { origin: window.location.origin, dicomwebBase: config.dicomwebBase, study: hungPlan.studyInstanceUid, series: uid });
        const urls = built.imageIds.map((id) => frameUrlOf(id) ?? id);
        const start = hang.start === 'middle' ? middleSliceIndex(urls.length) : 0;
        frames.expect(urls);
        const sop = built.sopByImageId.get(built.imageIds[start] ?? '');
        const instance = instances.find((i) => firstString(i, TAG.SOPInstanceUID) === sop);
        return { urls, start, instance };
      });
      const preview: PreviewPromise = stack.then(({ urls, start, instance }) => (urls[start] ? fetchPreview(urls[start], instance, frames) : null)).catch(() => null);
      previews.set(uid, preview);
      return stack;
    });
    if (!mounted && !root.querySelector('.sr-app')) renderSkeleton(root, hungPlan, previews, () => mounted);
    return stacks;
  });
  ready.catch(() => undefined);
  void ready
    .then(async (pending) => {
      // A series whose metadata failed is left to the viewer, which reports it.
      const stacks = (await Promise.allSettled(pending)).flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      // The shown slices are fetched by their previews; fetch the rest behind them.
      await Promise.all([...previews.values(), remainingAllowed]);
      const shown = new Set(stacks.map((s) => s.urls[s.start]));
      await prefetchFrames(
        framePrefetchOrder(stacks).filter((url) => !shown.has(url)),
        (url, frame) => frames.settle(url, frame),
        { priority: FRAME_PRIORITY },
      );
    })
    .catch(() => undefined)
    // Whatever went wrong, nobody waits for a frame the boot will not fetch any more.
    .finally(() => frames.stopWaiting());
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
    frames,
    fetchRemainingFrames,
    mount: () => {
      mounted = true;
    },
  };
}
