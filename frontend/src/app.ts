import { eventTarget, RenderingEngine } from '@cornerstonejs/core';
import dicomImageLoader from '@cornerstonejs/dicom-image-loader';
import { ApiClient, readCookie } from './api/client';
import { buildSeriesStack, fetchSeriesMetadata, type SeriesStack } from './api/dicomweb';
import type { AiSegmentation, Assignment, Series, SeriesRole } from './api/types';
import { GradingPanel } from './reading/GradingPanel';
import { createReadingToolGroup } from './tools/readingTools';
import { AiPanel } from './ui/aiPanel';
import { describeError, h } from './ui/dom';
import { RootState, type ViewportRole } from './ui/rootState';
import { addAiLabelmap, setAiOverlayOpacity, setAiOverlayVisible, waitForSegmentationRender } from './viewer/aiOverlay';
import { initCornerstone } from './viewer/init';
import { SeriesPanel } from './viewer/seriesPanel';

const RENDERING_ENGINE_ID = 'spinereview-reading-engine';

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

function csrfTokenFor(root: HTMLElement): () => string | null {
  return () =>
    readCookie(document.cookie, 'csrftoken') ??
    (root.dataset.csrfToken || null) ??
    document.querySelector<HTMLInputElement>('input[name="csrfmiddlewaretoken"]')?.value ??
    null;
}

const ROLE_VIEW: Record<SeriesRole, { role: ViewportRole; heading: string; start: 'middle' | 'first' }> = {
  sagittal_t2: { role: 'sagittal', heading: 'Sagittal T2', start: 'middle' },
  axial_t2: { role: 'axial', heading: 'Axial T2', start: 'first' },
};

interface ViewerPart {
  panel: SeriesPanel;
  series: Series | undefined;
}

/** Mounts the reading viewer into #viewer-root. */
export async function mountReadingViewer(root: HTMLElement): Promise<void> {
  const state = new RootState(root);
  state.setState('loading');
  root.classList.add('sr-root');
  fitToWindow(root);

  const loading = h('div', { class: 'sr-splash', role: 'status' }, 'Loading assignment…');
  root.replaceChildren(loading);

  let config: MountConfig;
  let assignment: Assignment;
  const api = new ApiClient({ apiBase: root.dataset.apiBase || '/api/v1', csrfToken: csrfTokenFor(root) });
  try {
    config = readMountConfig(root);
    assignment = await api.getAssignment(config.assignmentId);
  } catch (err) {
    const message = `Could not load this reading assignment: ${describeError(err)}`;
    root.replaceChildren(
      h('div', { class: 'sr-splash sr-splash-error', role: 'alert', id: 'viewer-error' }, message),
    );
    state.setState('error', message);
    return;
  }

  // ---- layout ----
  const errorBanner = h('div', { class: 'sr-banner', role: 'alert', id: 'viewer-error', hidden: true });
  const showError = (message: string): void => {
    const line = h('p', {}, message);
    errorBanner.append(line);
    errorBanner.hidden = false;
    state.setState('error', message);
  };

  const parts = new Map<ViewportRole, ViewerPart>();
  for (const [role, view] of Object.entries(ROLE_VIEW) as [SeriesRole, (typeof ROLE_VIEW)[SeriesRole]][]) {
    const series = assignment.case.series.find((s) => s.role === role);
    const panel = new SeriesPanel(view.role, series?.description || view.heading);
    parts.set(view.role, { panel, series });
  }
  const sag = parts.get('sagittal')!;
  const ax = parts.get('axial')!;

  const aiSegmentations = [sag.series?.ai_segmentation, ax.series?.ai_segmentation].filter(
    (s): s is AiSegmentation => s !== null && s !== undefined,
  );
  const overlays: Array<{ viewportId: string; segmentationId: string }> = [];
  const aiPanel = new AiPanel(aiSegmentations, {
    onToggle: (visible) => {
      for (const o of overlays) setAiOverlayVisible(o.viewportId, o.segmentationId, visible);
    },
    onOpacity: (alpha) => {
      for (const o of overlays) setAiOverlayOpacity(o.viewportId, o.segmentationId, alpha);
    },
  });

  const badge = h('span', { class: `sr-badge sr-badge-${assignment.status}`, id: 'assignment-status' }, statusText(assignment.status));
  const grading = new GradingPanel({
    api,
    assignmentId: config.assignmentId,
    caseLabel: assignment.case.label,
    protocol: assignment.protocol,
    read: assignment.read,
    rootState: state,
    reload: async () => (await api.getAssignment(config.assignmentId)).read,
    onRead: (read) => {
      const status: Assignment['status'] = read.submitted ? 'submitted' : 'in_progress';
      badge.className = `sr-badge sr-badge-${status}`;
      badge.textContent = statusText(status);
    },
  });

  const viewportsEl = h('div', { class: 'sr-viewports' }, sag.panel.container, ax.panel.container);
  root.replaceChildren(
    h(
      'div',
      { class: 'sr-app' },
      h(
        'div',
        { class: 'sr-topbar' },
        h('span', { class: 'sr-case', id: 'case-label' }, assignment.case.label),
        h('span', { class: 'sr-topbar-meta' }, `Reader ${assignment.reader}`),
        badge,
        h(
          'span',
          { class: 'sr-topbar-help' },
          'Left drag: window/level · Middle: pan · Right: zoom · Wheel: scroll',
        ),
      ),
      errorBanner,
      h(
        'div',
        { class: 'sr-main' },
        viewportsEl,
        h('aside', { class: 'sr-sidebar' }, aiPanel.element, grading.element),
      ),
    ),
  );

  // ---- Cornerstone ----
  let engine: RenderingEngine;
  try {
    await initCornerstone();
    engine = new RenderingEngine(RENDERING_ENGINE_ID);
    for (const part of parts.values()) part.panel.enable(engine);
    createReadingToolGroup(
      [...parts.values()].map((p) => p.panel.viewportId),
      RENDERING_ENGINE_ID,
    );
  } catch (err) {
    const message = `The image viewer could not start (WebGL is required): ${describeError(err)}`;
    for (const part of parts.values()) part.panel.setError(message);
    showError(message);
    return;
  }
  const resizeObserver = new ResizeObserver(() => engine.resize(true, true));
  resizeObserver.observe(viewportsEl);

  // Labels download in parallel with the images.
  const labelsBySeries = new Map<string, Promise<Uint8Array>>();
  for (const part of parts.values()) {
    const ai = part.series?.ai_segmentation;
    if (part.series && ai) {
      labelsBySeries.set(
        part.series.series_instance_uid,
        api.binary(ai.labels_url).then((buf) => new Uint8Array(buf)),
      );
    }
  }
  // An unobserved rejection would only reach the console; it is reported below.
  for (const p of labelsBySeries.values()) p.catch(() => undefined);

  const loadPart = async (part: ViewerPart): Promise<{ part: ViewerPart; stack: SeriesStack } | null> => {
    const { panel, series } = part;
    if (!series) {
      panel.setMessage(`This case has no ${panel.role} T2 series`);
      return null;
    }
    const start = ROLE_VIEW[series.role].start;
    try {
      panel.setLoading('Loading series metadata…');
      const instances = await fetchSeriesMetadata(
        config.dicomwebBase,
        assignment.case.study_instance_uid,
        series.series_instance_uid,
      );
      const stack = buildSeriesStack(
        instances,
        {
          origin: window.location.origin,
          dicomwebBase: config.dicomwebBase,
          study: assignment.case.study_instance_uid,
          series: series.series_instance_uid,
        },
        (imageId, instance) =>
          dicomImageLoader.wadors.metaDataManager.add(
            imageId,
            instance as unknown as Parameters<typeof dicomImageLoader.wadors.metaDataManager.add>[1],
          ),
      );
      if (stack.imageIds.length === 0) throw new Error('the series has no images');
      await panel.showStack(engine, stack.imageIds, start, () => state.imageRendered(panel.role));
      return { part, stack };
    } catch (err) {
      const message = `${series.description || panel.role}: images could not be loaded — ${describeError(err)}`;
      panel.setError(message);
      showError(message);
      return null;
    }
  };

  const loaded = await Promise.all([loadPart(sag), loadPart(ax)]);
  if (state.state !== 'error') state.setState('ready');

  // ---- AI overlay ----
  const withAi = loaded.filter(
    (l): l is { part: ViewerPart; stack: SeriesStack } => l !== null && !!l.part.series?.ai_segmentation,
  );
  if (aiSegmentations.length === 0) return;
  if (withAi.length === 0) {
    aiPanel.setStatus('AI overlay not shown: the images did not load', 'error');
    return;
  }
  const failures: string[] = [];
  const rendered = await Promise.all(
    withAi.map(async ({ part, stack }) => {
      const series = part.series!;
      const ai = series.ai_segmentation!;
      try {
        const labels = await labelsBySeries.get(series.series_instance_uid)!;
        const renderedOnce = waitForSegmentationRender(eventTarget, part.panel.viewportId, 10000);
        const result = await addAiLabelmap({
          viewportId: part.panel.viewportId,
          imageIds: stack.imageIds,
          sopByImageId: stack.sopByImageId,
          rows: stack.rows,
          columns: stack.columns,
          ai,
          labels,
        });
        overlays.push({ viewportId: part.panel.viewportId, segmentationId: result.segmentationId });
        engine.getViewport(part.panel.viewportId)?.render();
        if (!(await renderedOnce)) throw new Error('the overlay did not render');
        return true;
      } catch (err) {
        failures.push(`${series.description || part.panel.role}: ${describeError(err)}`);
        return false;
      }
    }),
  );
  if (failures.length > 0) {
    aiPanel.setStatus(`AI overlay could not be shown — ${failures.join('; ')}`, 'error');
  } else {
    aiPanel.setStatus('');
  }
  if (overlays.length > 0) aiPanel.enableControls();
  if (rendered.every(Boolean)) state.overlayRendered();
}

function statusText(status: Assignment['status']): string {
  switch (status) {
    case 'not_started':
      return 'Not started';
    case 'in_progress':
      return 'In progress';
    case 'submitted':
      return 'Submitted';
  }
}

/** Fills the window below whatever the site header takes. */
function fitToWindow(root: HTMLElement): void {
  const update = (): void => {
    const top = Math.max(0, root.getBoundingClientRect().top + window.scrollY);
    root.style.setProperty('--sr-top', `${Math.round(top)}px`);
  };
  update();
  window.addEventListener('resize', update);
}
