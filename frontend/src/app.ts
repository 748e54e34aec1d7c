import { cache, getEnabledElementByViewportId, RenderingEngine, Enums as CoreEnums, type Types } from '@cornerstonejs/core';
import dicomImageLoader from '@cornerstonejs/dicom-image-loader';
import { ApiClient, readCookie } from './api/client';
import { buildSeriesStack, fetchSeriesMetadata, frameUrlOf, type SeriesStack } from './api/dicomweb';
import { readMountConfig, type Boot, type MountConfig } from './boot';
import type { Assignment, Measurement, Series } from './api/types';
import { ComparePanel } from './compare/ComparePanel';
import { MeasurementController, type HungSeries } from './measurements/controller';
import { MeasurementPanel, keyFor } from './measurements/MeasurementPanel';
import { nearestSlice } from './measurements/math/levels';
import type { ImagePlane } from './measurements/math/plane';
import type { Vec3 } from './measurements/math/vec';
import { GradingPanel } from './reading/GradingPanel';
import { ReadStore } from './reading/readStore';
import { formatElapsed, ReadingTimer } from './reading/timer';
import { LabelmapLayer, type LayerSegment } from './segmentation/layer';
import { labelLut, remapLabels, reorderSlices } from './segmentation/ops';
import { ReaderSegmentation } from './segmentation/readerSegmentation';
import { AiPanel, SegmentationPanel } from './segmentation/SegmentationPanel';
import { ReadingTools, READING_TOOL_GROUP_ID, SEGMENTATION_TOOL_GROUP_ID, type PrimaryTool } from './tools/readingTools';
import { describeError, h } from './ui/dom';
import { History } from './ui/history';
import { RootState, type ViewportRole } from './ui/rootState';
import { buildHelpDialog, findShortcut, isTyping, type Shortcut } from './ui/shortcuts';
import { labelColor, prettyLabelName, sortedLabelEntries } from './viewer/colors';
import { drawReferenceLines, type ReferenceLine } from './viewer/crossReferenceOverlay';
import { imagePlaneOf } from './viewer/imagePlanes';
import { initCornerstone, registerBootFrames } from './viewer/init';
import { componentCentroids, levelMapFromBlocks, levelMapFromDiscs, type LevelMap } from './viewer/levelMap';
import { HANGING } from './viewer/hanging';
import { SeriesPanel } from './viewer/seriesPanel';
import { percentileWindow, WINDOW_PRESETS } from './viewer/windowLevel';

const RENDERING_ENGINE_ID = 'spinereview-reading-engine';
/** Longest the tools and overlays wait for the hung series to load after their first images (ms). */
const TOOLS_WAIT_MS = 1500;

function csrfTokenFor(root: HTMLElement): () => string | null {
  return () =>
    readCookie(document.cookie, 'csrftoken') ??
    (root.dataset.csrfToken || null) ??
    document.querySelector<HTMLInputElement>('input[name="csrfmiddlewaretoken"]')?.value ??
    null;
}


interface Part {
  panel: SeriesPanel;
  series: Series | undefined;
  stack: SeriesStack | null;
  planes: Array<ImagePlane | null>;
}

const PHASE_TEXT: Record<string, string> = { unaided: 'Unaided read', aided: 'AI-aided read', done: 'Read complete' };

/**
 * Mounts the reading workspace into #viewer-root. `boot` carries the requests
 * the entry chunk started (assignment, metadata, frames); without it they
 * start here.
 */
export async function mountReadingViewer(root: HTMLElement, boot: Boot | null = null): Promise<void> {
  performance.mark('sr:mount');
  const state = new RootState(root);
  state.setState('loading');
  root.classList.add('sr-root');
  fitToWindow(root);
  // The boot's skeleton (with its previews) stays until the workspace replaces it.
  if (!root.querySelector('.sr-skeleton')) root.replaceChildren(h('div', { class: 'sr-splash', role: 'status' }, 'Loading assignment…'));

  let config: MountConfig;
  let assignment: Assignment;
  const api = new ApiClient({ apiBase: root.dataset.apiBase || '/api/v1', csrfToken: csrfTokenFor(root) });
  try {
    config = boot?.config ?? readMountConfig(root);
    assignment = await (boot?.assignment ?? api.getAssignment(config.assignmentId));
  } catch (err) {
    const message = `Could not load this reading assignment: ${describeError(err)}`;
    root.replaceChildren(h('div', { class: 'sr-splash sr-splash-error', role: 'alert', id: 'viewer-error' }, message));
    state.setState('error', message);
    return;
  }
  const protocol = assignment.protocol;
  const phase = assignment.phase ?? assignment.read.phase ?? 'unaided';
  const editable = phase !== 'done' && !assignment.read.submitted;
  state.set('phase', phase);

  // ---- state ----
  const history = new History(200);
  const timer = new ReadingTimer(assignment.read.elapsed_s ?? 0);
  const store = new ReadStore({ api, assignmentId: config.assignmentId, protocol, read: assignment.read, elapsedS: () => timer.elapsedS, editable });
  const previous = assignment.previous_reads?.find((r) => r.submitted) ?? assignment.previous_reads?.[0] ?? null;

  // ---- layout ----
  const errorBanner = h('div', { class: 'sr-banner', role: 'alert', id: 'viewer-error', hidden: true });
  const showError = (message: string): void => {
    errorBanner.append(h('p', {}, message));
    errorBanner.hidden = false;
    state.setState('error', message);
  };
  const toast = h('div', { class: 'sr-toast', role: 'status', 'aria-live': 'polite', id: 'toast', hidden: true });
  let toastTimer = 0;
  const notify = (message: string): void => {
    toast.textContent = message;
    toast.hidden = false;
    window.clearTimeout(toastTimer);
    toastTimer = window.setTimeout(() => (toast.hidden = true), 4000);
  };

  const parts = new Map<ViewportRole, Part>();
  for (const hang of HANGING) {
    const series = assignment.case.series.find((s) => s.role === hang.seriesRole);
    if (!series && !hang.always) continue;
    parts.set(hang.role, { panel: new SeriesPanel(hang.role, series?.description ? `${hang.heading} · ${series.description}` : hang.heading), series, stack: null, planes: [] });
  }
  const sag = parts.get('sagittal')!;
  const ax = parts.get('axial')!;
  const segSpec = protocol.segmentation ?? null;
  const segRole = HANGING.find((x) => x.seriesRole === segSpec?.series_role)?.role ?? null;
  const segPart = segRole ? (parts.get(segRole) ?? null) : null;

  const timerEl = h('span', { class: 'sr-timer', id: 'reading-timer', title: 'Time spent on this read (counts while the page is visible)' }, '0:00');
  const phaseBadge = h('span', { class: `sr-badge sr-phase sr-phase-${phase}`, id: 'phase-badge' }, PHASE_TEXT[phase] ?? phase);
  const helpButton = h('button', { type: 'button', class: 'sr-btn sr-btn-small', id: 'help-button', title: 'Keyboard shortcuts (?)' }, '?');
  const toolbar = h('div', { class: 'sr-toolbar', id: 'toolbar', role: 'toolbar', 'aria-label': 'Tools' });
  const viewportsEl = h('div', { class: `sr-viewports sr-viewports-${parts.size}` }, ...[...parts.values()].map((p) => p.panel.container));

  const levelOfAxialIndex = new Map<number, string>();
  let levelMap: LevelMap | null = null;
  const grading = new GradingPanel({
    store,
    caseLabel: assignment.case.label,
    rootState: state,
    previousGrades: previous?.grades ?? null,
    onLevel: (level) => jumpToLevel(level),
    describeKey: (key) => protocol.measurements?.find((m) => m.key === key)?.label ?? null,
  });

  const phaseBanner =
    phase === 'aided'
      ? h('div', { class: 'sr-phase-banner', id: 'phase-banner' }, h('strong', {}, 'Phase 2 of 2 · AI-aided read. '), `Your unaided read${previous ? ` (v${previous.version})` : ''} is locked; its grades show in grey beside each answer. The AI result is now shown.`)
      : phase === 'unaided' && protocol.two_phase
        ? h('div', { class: 'sr-phase-banner', id: 'phase-banner' }, h('strong', {}, 'Phase 1 of 2 · unaided read. '), 'The AI result is shown after you submit this read.')
        : phase === 'done'
          ? h('div', { class: 'sr-phase-banner', id: 'phase-banner' }, 'This read is complete and read-only.')
          : null;

  const sidebar = h('aside', { class: 'sr-sidebar' }, phaseBanner, grading.element);
  boot?.mount();
  for (const part of parts.values()) {
    const preview = part.series ? boot?.preview(part.series.series_instance_uid) : undefined;
    void preview?.then((canvas) => {
      if (canvas) part.panel.showPreview(canvas);
    });
  }
  root.replaceChildren(
    h(
      'div',
      { class: 'sr-app' },
      h(
        'div',
        { class: 'sr-topbar' },
        h('span', { class: 'sr-case', id: 'case-label' }, assignment.case.label),
        h('span', { class: 'sr-topbar-meta' }, `Reader ${assignment.reader}`),
        phaseBadge,
        timerEl,
        h('span', { class: 'sr-topbar-spacer' }),
        helpButton,
      ),
      toolbar,
      errorBanner,
      h('div', { class: 'sr-main' }, viewportsEl, sidebar),
      toast,
    ),
  );

  // ---- timer ----
  const tickTimer = (): void => {
    timerEl.textContent = `Time ${formatElapsed(timer.elapsedS)}`;
  };
  const updateTimerRunning = (): void => {
    if (document.visibilityState === 'visible' && !store.submitted) timer.start();
    else timer.pause();
    tickTimer();
  };
  document.addEventListener('visibilitychange', updateTimerRunning);
  updateTimerRunning();
  window.setInterval(tickTimer, 1000);
  store.onChange(() => {
    if (store.submitted) timer.pause();
  });

  // ---- Cornerstone ----
  let engine: RenderingEngine;
  let tools: ReadingTools;
  let unregisterBootFrames: (() => void) | null = null;
  try {
    await initCornerstone();
    if (boot) {
      const { frames } = boot;
      unregisterBootFrames = registerBootFrames((url) => frames.take(url));
      for (const part of parts.values()) part.panel.frameArrival = (imageId) => {
          const url = frameUrlOf(imageId);
          return url === null ? undefined : frames.settled(url);
        };
    }
    performance.mark('sr:cornerstone-init');
    engine = new RenderingEngine(RENDERING_ENGINE_ID);
    for (const part of parts.values()) part.panel.enable(engine);
  } catch (err) {
    const message = `The image viewer could not start (WebGL is required): ${describeError(err)}`;
    for (const part of parts.values()) part.panel.setError(message);
    showError(message);
    return;
  }
  const resizeObserver = new ResizeObserver(() => engine.resize(true, true));
  resizeObserver.observe(viewportsEl);
  const viewportOf = (part: Part): Types.IStackViewport => engine.getViewport(part.panel.viewportId) as Types.IStackViewport;
  let activePart: Part = ax;
  for (const part of parts.values()) {
    part.panel.container.addEventListener('pointerenter', () => (activePart = part));
    part.panel.container.addEventListener('pointerdown', () => (activePart = part));
  }

  // Labels download in parallel with the images.
  const aiLabels = new Map<string, Promise<Uint8Array>>();
  for (const part of parts.values()) {
    const ai = part.series?.ai_segmentation;
    if (part.series && ai) {
      const p = api.binary(ai.labels_url).then((buf) => new Uint8Array(buf));
      p.catch(() => undefined);
      aiLabels.set(part.series.series_instance_uid, p);
    }
  }
  const mineLabels = segPart?.series && segSpec ? api.getReaderLabels(config.assignmentId, segPart.series.series_instance_uid) : null;
  mineLabels?.catch(() => undefined);

  const loadPart = async (part: Part, start: 'middle' | 'first'): Promise<void> => {
    const { panel, series } = part;
    if (!series) {
      panel.setMessage(`This case has no ${panel.role.replace('-', ' ')} series`);
      return;
    }
    try {
      panel.setLoading('Loading series metadata…');
      const instances = await (boot?.metadata(series.series_instance_uid) ??
        fetchSeriesMetadata(config.dicomwebBase, assignment.case.study_instance_uid, series.series_instance_uid));
      const stack = buildSeriesStack(
        instances,
        { origin: window.location.origin, dicomwebBase: config.dicomwebBase, study: assignment.case.study_instance_uid, series: series.series_instance_uid },
        (imageId, instance) =>
          dicomImageLoader.wadors.metaDataManager.add(imageId, instance as unknown as Parameters<typeof dicomImageLoader.wadors.metaDataManager.add>[1]),
      );
      if (stack.imageIds.length === 0) throw new Error('the series has no images');
      part.stack = stack;
      part.planes = stack.imageIds.map(imagePlaneOf);
      await panel.showStack(engine, stack.imageIds, start, () => {
        state.imageRendered(panel.role as ViewportRole);
        // Milliseconds since navigation start, for bench figures: the first image on screen.
        if (!root.dataset.firstImageMs) {
          performance.mark('sr:first-image');
          state.set('first-image-ms', String(Math.round(performance.now())));
        }
      });
    } catch (err) {
      const message = `${series.description || panel.role}: images could not be loaded — ${describeError(err)}`;
      panel.setError(message);
      showError(message);
    }
  };
  await Promise.all([...parts.values()].map((p) => loadPart(p, HANGING.find((x) => x.role === p.panel.role)!.start)));
  // The tools, overlays and annotations come after the series (or TOOLS_WAIT_MS): each of them re-renders
  // every viewport, and a render copies the viewport's pixels out of WebGL on the main thread (tens of ms
  // each where WebGL runs in software), which would hold up the slices still decoding. Loaded first, the
  // whole series scrolls sooner (bench/viewer_load.py, cold: 1.77 -> 1.23 s); nothing can be measured or
  // drawn before the first images anyway.
  await Promise.race([
    Promise.all([...parts.values()].map((p) => p.panel.loaded)),
    new Promise<void>((resolve) => window.setTimeout(resolve, TOOLS_WAIT_MS)),
  ]);
  try {
    tools = new ReadingTools(
      [...parts.values()].map((p) => ({ viewportId: p.panel.viewportId, canSegment: p === segPart && editable && !!segPart.series })),
      RENDERING_ENGINE_ID,
    );
  } catch (err) {
    const message = `The viewer's tools could not start: ${describeError(err)}`;
    showError(message);
    return;
  }
  state.set('series-count', String([...parts.values()].filter((p) => p.stack).length));
  void Promise.all([...parts.values()].map((p) => p.panel.loaded)).then(() => {
    // Every hung slice is in Cornerstone's cache: the boot's copies are no longer needed.
    unregisterBootFrames?.();
    boot?.frames.release();
    performance.mark('sr:series-loaded');
    state.set('series-loaded-ms', String(Math.round(performance.now())));
    state.set('series-loaded', 'true');
  });

  // ---- cross-reference lines, level labels, slice sync ----
  const sagParts = [...parts.values()].filter((p) => p.panel.role !== 'axial');
  const axialIndex = (): number => (ax.stack ? viewportOf(ax).getCurrentImageIdIndex() : -1);
  const drawCrossRefs = (): void => {
    const index = axialIndex();
    const current = ax.planes[index] ?? null;
    const lines: ReferenceLine[] = [];
    if (levelMap) {
      for (const s of levelMap.slices) {
        const plane = ax.planes[s.sliceIndex];
        if (plane && s.sliceIndex !== index) lines.push({ plane, label: s.level, current: false });
      }
    }
    if (current) lines.push({ plane: current, label: levelOfAxialIndex.get(index) ?? '', current: true });
    for (const part of sagParts) {
      if (!part.stack) continue;
      const vp = viewportOf(part);
      const target = part.planes[vp.getCurrentImageIdIndex()] ?? null;
      const n = drawReferenceLines(part.panel.overlay, vp, target, lines);
      if (part === sag) state.set('crossref-lines', String(n));
    }
    ax.panel.setLevel(levelOfAxialIndex.get(index) ?? '');
    state.set('axial-level', levelOfAxialIndex.get(index) ?? null);
  };
  for (const part of parts.values()) {
    part.panel.element.addEventListener(CoreEnums.Events.IMAGE_RENDERED, () => {
      if (part !== ax) drawCrossRefs();
    });
  }
  ax.panel.onSlice((index) => {
    drawCrossRefs();
    const level = levelOfAxialIndex.get(index);
    if (level) grading.selectLevel(level);
  });
  // Sagittal T2 and T1 scroll together (nearest slice by position).
  const t1 = parts.get('sagittal-t1');
  if (t1) {
    let syncing = false;
    const link = (from: Part, to: Part): void => {
      from.panel.onSlice((index) => {
        const plane = from.planes[index];
        if (syncing || !plane || !to.stack) return;
        const targets = to.planes.filter((p): p is ImagePlane => p !== null);
        if (targets.length !== to.planes.length) return;
        const centre = plane.position;
        const near = nearestSlice(targets, centre);
        if (!near) return;
        syncing = true;
        void viewportOf(to).setImageIdIndex(near.index).finally(() => (syncing = false));
      });
    };
    link(sag, t1);
    link(t1, sag);
  }
  // Shift+click on a sagittal image: the axial viewport jumps to the slice through that point.
  for (const part of sagParts) {
    part.panel.element.addEventListener(
      'mousedown',
      (e) => {
        if (!e.shiftKey || !ax.stack || !part.stack) return;
        const rect = part.panel.element.getBoundingClientRect();
        const world = viewportOf(part).canvasToWorld([e.clientX - rect.left, e.clientY - rect.top]) as Vec3;
        const planes = ax.planes.filter((p): p is ImagePlane => p !== null);
        if (planes.length !== ax.planes.length) return;
        const near = nearestSlice(planes, world);
        if (near) void viewportOf(ax).setImageIdIndex(near.index);
        e.stopPropagation();
        e.preventDefault();
      },
      true,
    );
  }

  const jumpToLevel = (level: string): void => {
    const slice = levelMap?.slices.find((s) => s.level === level);
    if (!slice || !ax.stack) {
      if (ax.stack) notify(`No position known for ${level}: ${levelMap ? 'that disc was not found' : 'no level information for this case'}`);
      return;
    }
    void viewportOf(ax).setImageIdIndex(slice.sliceIndex);
  };

  // ---- AI layers ----
  const aiVisible = [...parts.values()].some((p) => p.series?.ai_segmentation);
  const colourByName = new Map((segSpec?.labels ?? []).map((l) => [l.name, rgbOf(l.color)] as const));
  const aiSegmentsOf = (labelMap: Record<string, string>): LayerSegment[] =>
    sortedLabelEntries(labelMap).map(({ value, name }) => ({ value, label: prettyLabelName(name), color: colourByName.get(name) ?? labelColor(value) }));
  const aiLayers: LabelmapLayer[] = [];
  const aiSegments = new Map<number, LayerSegment>();
  for (const p of parts.values()) for (const s of aiSegmentsOf(p.series?.ai_segmentation?.label_map ?? {})) aiSegments.set(s.value, s);
  const aiUnavailable = aiVisible
    ? null
    : phase === 'unaided' && protocol.two_phase
      ? 'AI result hidden until you submit your unaided read'
      : 'AI result not available';
  const aiPanel = new AiPanel({
    modelVersions: [...new Set([...parts.values()].map((p) => p.series?.ai_segmentation?.model_version).filter((v): v is string => !!v))],
    segments: [...aiSegments.values()].sort((a, b) => a.value - b.value),
    layers: () => aiLayers,
    unavailable: aiUnavailable,
  });

  // ---- my mask ----
  let mine: ReaderSegmentation | null = null;
  let mineUnavailable: string | null = null;
  let segAiVolume: (() => Uint8Array) | null = null;
  if (!segSpec) mineUnavailable = 'This protocol has no segmentation task.';
  else if (!segPart?.series || !segPart.stack) mineUnavailable = `No ${segSpec.series_role.replace('_', ' ')} series to segment.`;

  // ---- measurements ----
  const hung: HungSeries[] = [...parts.values()]
    .filter((p) => p.series && p.stack)
    .map((p) => ({
      seriesUid: p.series!.series_instance_uid,
      viewportId: p.panel.viewportId,
      imageIds: p.stack!.imageIds,
      sopByImageId: p.stack!.sopByImageId,
      toolGroupId: p === segPart && editable ? SEGMENTATION_TOOL_GROUP_ID : READING_TOOL_GROUP_ID,
    }));
  const measurements = new MeasurementController({
    store,
    history,
    series: hung,
    levelForImage: (imageId) => {
      const index = ax.stack?.imageIds.indexOf(imageId) ?? -1;
      return index >= 0 ? (levelOfAxialIndex.get(index) ?? null) : null;
    },
    selectedLevel: () => grading.selectedLevel,
    notify,
    onSynced: (n) => state.set('annotations', String(n)),
  });
  const pickMeasurementTool = (kind: Measurement['kind']): void => setTool(kind === 'length' ? 'length' : kind === 'area' ? 'area' : 'discHeight');
  const measurementPanel = new MeasurementPanel({ store, controller: measurements, pickTool: pickMeasurementTool });
  sidebar.append(measurementPanel.element);

  try {
    await Promise.all(
      [...parts.values()].map(async (part) => {
        const ai = part.series?.ai_segmentation;
        if (!ai || !part.stack) return;
        const labels = await aiLabels.get(part.series!.series_instance_uid)!;
        const layer = new LabelmapLayer({
          segmentationId: `ai-${ai.id}-${part.panel.viewportId}`,
          label: `AI ${ai.model_version}`,
          viewportId: part.panel.viewportId,
          imageIds: part.stack.imageIds,
          sopByImageId: part.stack.sopByImageId,
          zSops: ai.sop_instance_uids,
          rows: part.stack.rows,
          columns: part.stack.columns,
          segments: aiSegmentsOf(ai.label_map),
          locked: true,
          style: { fill: true, outline: true, alpha: 0.3 },
        });
        await layer.add(labels);
        aiLayers.push(layer);
        if (part === segPart && segSpec) {
          // The AI's structures in the protocol's label values (the others dropped), in my mask's slice order.
          const lut = labelLut(ai.label_map, segSpec.labels);
          segAiVolume = () => remapLabels(reorderSlices(layer.read(), part.stack!.rows * part.stack!.columns, ai.sop_instance_uids, mine?.layer.opts.zSops ?? part.stack!.spatialSops), lut);
        }
        // Level positions: disc centres of the AI's sagittal labels.
        const discValue = Number(Object.entries(ai.label_map).find(([, name]) => name === 'intervertebral_disc')?.[0] ?? NaN);
        if (part === sag && Number.isInteger(discValue) && ax.stack) {
          const planeBySop = new Map(part.stack.imageIds.map((id, i) => [part.stack!.sopByImageId.get(id)!, part.planes[i] ?? null]));
          const planes = ai.sop_instance_uids.map((sop) => planeBySop.get(sop) ?? null);
          const centres = componentCentroids(labels, [ai.shape[0]!, ai.shape[1]!, ai.shape[2]!], discValue, planes, 20);
          const axialPlanes = ax.planes.filter((p): p is ImagePlane => p !== null);
          if (axialPlanes.length === ax.planes.length) levelMap = levelMapFromDiscs(protocol.levels, centres, axialPlanes) ?? levelMap;
        }
      }),
    );
    aiPanel.setStatus('');
    if (aiLayers.length > 0) {
      aiPanel.enableControls();
      state.overlayRendered();
    }
  } catch (err) {
    aiPanel.setStatus(`AI mask could not be shown — ${describeError(err)}`, 'error');
  }

  if (segSpec && segPart?.series && segPart.stack) {
    try {
      const got = await mineLabels!;
      const ai = segPart.series.ai_segmentation;
      const zSops = ai && ai.sop_instance_uids.length === segPart.stack.spatialSops.length ? ai.sop_instance_uids : segPart.stack.spatialSops;
      const layer = new LabelmapLayer({
        segmentationId: `mine-${config.assignmentId}-${segPart.series.series_instance_uid}`,
        label: 'My mask',
        viewportId: segPart.panel.viewportId,
        imageIds: segPart.stack.imageIds,
        sopByImageId: segPart.stack.sopByImageId,
        zSops,
        rows: segPart.stack.rows,
        columns: segPart.stack.columns,
        segments: segSpec.labels.map((l) => ({ value: l.value, label: l.label, color: rgbOf(l.color) })),
        locked: !editable,
        style: { fill: true, outline: true, alpha: 0.45 },
      });
      const expected = zSops.length * segPart.stack.rows * segPart.stack.columns;
      if (got && got.labels.length !== expected) throw new Error(`the saved mask has ${got.labels.length} voxels, this series needs ${expected}`);
      await layer.add(got?.labels ?? null);
      const plane = segPart.planes.find((p) => p !== null);
      mine = new ReaderSegmentation({
        api,
        assignmentId: config.assignmentId,
        seriesUid: segPart.series.series_instance_uid,
        layer,
        version: got?.version ?? 0,
        history,
        spacingMm: plane ? [plane.pixelSpacing[0], plane.pixelSpacing[1]] : [1, 1],
        notify,
      });
      mine.readOnly = !editable;
      mine.setActiveLabel(segSpec.labels[0]?.value ?? 1);
      state.set('mask-version', String(mine.saver.version));
      mine.saver.onChange(() => state.set('mask-version', String(mine!.saver.version)));
      mine.saver.onChange(() => state.set('mask-save', mine!.saver.state.kind));
    } catch (err) {
      mineUnavailable = `Your mask could not be loaded — ${describeError(err)}`;
      showError(mineUnavailable);
    }
  }
  tools.setBrushRadiusMm(segSpec?.brush_radius_mm ?? 2);
  const segPanel = new SegmentationPanel({
    mine,
    mineUnavailable,
    seriesLabel: segPart?.panel.role === 'axial' ? 'Axial T2' : 'Sagittal',
    brushRadiusMm: segSpec?.brush_radius_mm ?? 2,
    onBrushRadius: (mm) => tools.setBrushRadiusMm(mm),
    aiAvailable: () => !!segAiVolume && (aiLayers[0]?.isVisible ?? false),
    notify,
  });
  sidebar.append(segPanel.element, aiPanel.element);

  // ---- level positions ----
  if (!levelMap && ax.stack) {
    const axialPlanes = ax.planes.filter((p): p is ImagePlane => p !== null);
    if (axialPlanes.length === ax.planes.length) levelMap = levelMapFromBlocks(protocol.levels, axialPlanes);
  }
  if (levelMap) for (const [i, level] of levelMap.levelOfIndex) levelOfAxialIndex.set(i, level);
  grading.setLevelNote(
    levelMap
      ? `${levelMap.source}. Click a level to show it.`
      : ax.stack
        ? 'No level information for this case (no AI disc labels, and the axial slices do not form one block per level): pick axial slices by hand.'
        : null,
  );
  state.set('level-source', levelMap ? levelMap.slices[0]?.source ?? 'none' : 'none');
  // Open the axial images at the first level of the grid, where grading starts.
  const firstLevel = protocol.levels[0];
  if (levelMap && firstLevel && grading.selectedLevel === firstLevel) jumpToLevel(firstLevel);
  drawCrossRefs();

  // ---- compare ----
  let compare: ComparePanel | null = null;
  if (protocol.compare && aiVisible) {
    let diffLayer: LabelmapLayer | null = null;
    compare = new ComparePanel({
      api,
      assignmentId: config.assignmentId,
      onAiGrades: (grades) => grading.setAiGrades(grades),
      diff:
        mine && segAiVolume && segPart?.stack
          ? {
              labels: segSpec!.labels.map((l) => ({ value: l.value, label: l.label })),
              reader: () => mine!.volume(),
              ai: () => segAiVolume!(),
              show: (codes) => {
                const m = mine!;
                const segAi = aiLayers.find((l) => l.opts.viewportId === segPart.panel.viewportId);
                if (codes === null) {
                  diffLayer?.setVisible(false);
                  m.layer.setVisible(true);
                  segAi?.setVisible(true);
                  state.set('diff-view', null);
                  return;
                }
                const apply = async (): Promise<void> => {
                  if (!diffLayer) {
                    diffLayer = new LabelmapLayer({
                      segmentationId: `diff-${config.assignmentId}`,
                      label: 'Mine vs AI',
                      viewportId: segPart.panel.viewportId,
                      imageIds: segPart.stack!.imageIds,
                      sopByImageId: segPart.stack!.sopByImageId,
                      zSops: m.layer.opts.zSops,
                      rows: segPart.stack!.rows,
                      columns: segPart.stack!.columns,
                      segments: [
                        { value: 1, label: 'Both', color: [60, 200, 90] },
                        { value: 2, label: 'AI only (false positive)', color: [240, 60, 200] },
                        { value: 3, label: 'Mine only (false negative)', color: [40, 200, 255] },
                      ],
                      locked: true,
                      style: { fill: true, outline: false, alpha: 0.55 },
                    });
                    await diffLayer.add(codes);
                    m.layer.activate(m.activeLabel);
                  } else {
                    diffLayer.write(codes);
                  }
                  diffLayer.setVisible(true);
                  m.layer.setVisible(false);
                  segAi?.setVisible(false);
                  viewportOf(segPart).render();
                  state.set('diff-view', 'on');
                };
                void apply();
              },
            }
          : null,
    });
    sidebar.append(compare.element);
    void compare.load();
    store.onSubmitted(() => void compare?.load());
  }

  // ---- toolbar ----
  const toolButtons = new Map<PrimaryTool, HTMLButtonElement>();
  const toolButton = (tool: PrimaryTool, text: string, title: string): HTMLButtonElement => {
    const b = h('button', { type: 'button', class: 'sr-tool', 'data-tool': tool, title, 'aria-pressed': 'false' }, text);
    b.addEventListener('click', () => setTool(tool));
    toolButtons.set(tool, b);
    return b;
  };
  const actionButton = (id: string, text: string, title: string, run: () => void): HTMLButtonElement => {
    const b = h('button', { type: 'button', class: 'sr-tool', id, title }, text);
    b.addEventListener('click', run);
    return b;
  };
  const canSegment = !!mine && editable;
  const setTool = (tool: PrimaryTool): void => {
    if ((!canSegment || store.readOnly) && ['brush', 'eraser', 'thresholdBrush', 'rectScissors', 'circleScissors'].includes(tool)) {
      notify(store.readOnly ? 'This read is locked: the mask cannot change' : (mineUnavailable ?? 'No mask to edit'));
      return;
    }
    if (store.readOnly && ['length', 'area', 'spline', 'discHeight'].includes(tool)) {
      notify('This read is locked: measurements cannot be added');
      return;
    }
    tools.setPrimary(tool);
    if (mine && canSegment) mine.layer.activate(mine.activeLabel);
    const how: Partial<Record<PrimaryTool, string>> = {
      length: 'AP diameter: drag across the canal, anterior to posterior',
      area: 'Dural sac area: draw around the sac and end on the start point',
      spline: 'Dural sac area: click points around the sac, click the first one to close',
      discHeight: 'Disc height: three drags, superior to inferior endplate, at the anterior, middle and posterior disc',
      thresholdBrush: 'Threshold brush: paints only pixels like the one under the first click',
    };
    if (how[tool]) notify(how[tool]!);
  };
  tools.onChange((tool) => {
    for (const [t, b] of toolButtons) {
      b.classList.toggle('sr-active', t === tool);
      b.setAttribute('aria-pressed', String(t === tool));
    }
    state.set('tool', tool);
  });
  const presetSelect = h('select', { id: 'wl-preset', 'aria-label': 'Window/level preset', title: 'Window/level preset (Shift+1…5)' }, ...WINDOW_PRESETS.map((p, i) => h('option', { value: p.key }, `${i + 1}. ${p.label}`)));
  const applyPreset = (index: number): void => {
    const preset = WINDOW_PRESETS[index];
    if (!preset) return;
    presetSelect.value = preset.key;
    for (const part of new Set([activePart, ...parts.values()])) {
      if (!part.stack) continue;
      const vp = viewportOf(part);
      if (!preset.percentiles) {
        vp.resetProperties();
      } else {
        const imageId = vp.getCurrentImageId();
        const pixels = imageId ? cache.getImage(imageId)?.getPixelData() : undefined;
        if (!pixels) continue;
        const [lower, upper] = percentileWindow(pixels as ArrayLike<number>, preset.percentiles[0], preset.percentiles[1]);
        vp.setProperties({ voiRange: { lower, upper } });
      }
      vp.render();
    }
  };
  presetSelect.addEventListener('change', () => applyPreset(WINDOW_PRESETS.findIndex((p) => p.key === presetSelect.value)));
  const resetView = (): void => {
    for (const part of parts.values()) {
      if (!part.stack) continue;
      const vp = viewportOf(part);
      vp.resetCamera();
      vp.resetProperties();
      vp.render();
    }
  };
  const undoButton = actionButton('undo', '↶ Undo', 'Undo (Ctrl+Z)', () => undo());
  const redoButton = actionButton('redo', '↷ Redo', 'Redo (Ctrl+Y or Ctrl+Shift+Z)', () => redo());
  const refreshUndo = (): void => {
    undoButton.disabled = !history.canUndo || store.readOnly;
    redoButton.disabled = !history.canRedo || store.readOnly;
    undoButton.title = history.undoLabel ? `Undo ${history.undoLabel} (Ctrl+Z)` : 'Nothing to undo';
    redoButton.title = history.redoLabel ? `Redo ${history.redoLabel} (Ctrl+Y)` : 'Nothing to redo';
  };
  history.onChange(refreshUndo);
  refreshUndo();
  const undo = (): void => {
    if (store.readOnly) {
      notify('This read is locked: nothing to undo');
      return;
    }
    const c = history.undo();
    if (c) notify(`Undone: ${c.label}`);
  };
  const redo = (): void => {
    if (store.readOnly) return;
    const c = history.redo();
    if (c) notify(`Redone: ${c.label}`);
  };
  const group = (label: string, ...items: HTMLElement[]): HTMLElement => h('div', { class: 'sr-tool-group', role: 'group', 'aria-label': label }, h('span', { class: 'sr-tool-group-label' }, label), ...items);
  toolbar.append(
    group('View', toolButton('windowLevel', 'W/L', 'Window/level (W)'), toolButton('pan', 'Pan', 'Pan (P)'), toolButton('zoom', 'Zoom', 'Zoom (Z)'), presetSelect, actionButton('reset-view', 'Reset', 'Reset zoom, pan and window (R)', resetView)),
    group(
      'Measure',
      toolButton('length', 'AP length', 'Canal AP diameter: drag a line (L)'),
      toolButton('area', 'DSCA', 'Dural sac area: draw a closed outline (A)'),
      toolButton('spline', 'Spline', 'Dural sac area as a spline: click points, close on the first (Shift+A)'),
      toolButton('discHeight', 'Disc height', 'Disc height: 3 drags — anterior, middle, posterior (D)'),
    ),
    ...(canSegment
      ? [
          group(
            'Segment',
            toolButton('brush', 'Brush', 'Brush (B)'),
            toolButton('eraser', 'Eraser', 'Eraser (E)'),
            toolButton('thresholdBrush', 'Threshold', 'Threshold brush: paints pixels like the first one clicked (T)'),
            toolButton('rectScissors', 'Rect ✂', 'Rectangle scissors: fill a rectangle (S)'),
            toolButton('circleScissors', 'Circle ✂', 'Circle scissors: fill a circle (Shift+S)'),
            actionButton('tool-islands', 'Islands', 'Remove islands on this slice (X)', () => segPanel.element.querySelector<HTMLButtonElement>('#remove-islands')?.click()),
            actionButton('tool-interpolate', 'Interpolate', 'Interpolate between drawn slices (I)', () => segPanel.interpolate()),
          ),
        ]
      : []),
    group('Edit', undoButton, redoButton),
  );
  tools.setPrimary('windowLevel');

  // ---- keyboard ----
  const scrollActive = (delta: number | 'first' | 'last'): void => {
    const part = activePart.stack ? activePart : ax;
    if (!part.stack) return;
    const vp = viewportOf(part);
    const n = part.stack.imageIds.length;
    const index = delta === 'first' ? 0 : delta === 'last' ? n - 1 : Math.min(n - 1, Math.max(0, vp.getCurrentImageIdIndex() + delta));
    void vp.setImageIdIndex(index);
  };
  const shortcuts: Shortcut[] = [
    { chords: [{ key: '?' }], label: '?', description: 'Show this help', group: 'General', run: () => toggleHelp() },
    { chords: [{ key: 'z', ctrl: true }], label: 'Ctrl+Z', description: 'Undo (brush strokes, mask operations, measurements)', group: 'General', run: undo },
    { chords: [{ key: 'y', ctrl: true }, { key: 'z', ctrl: true, shift: true }], label: 'Ctrl+Y', description: 'Redo', group: 'General', run: redo },
    { chords: [{ key: 'Enter', ctrl: true }], label: 'Ctrl+Enter', description: 'Submit the read (asks first; lists what is missing)', group: 'General', run: () => grading.askSubmit() },
    { chords: [{ key: 'Escape' }], label: 'Esc', description: 'Back to window/level (drops an unfinished drawing)', group: 'General', run: () => setTool('windowLevel') },
    { chords: [{ key: 'w' }], label: 'W', description: 'Window/level tool', group: 'Viewing', run: () => setTool('windowLevel') },
    { chords: [{ key: 'p' }], label: 'P', description: 'Pan tool', group: 'Viewing', run: () => setTool('pan') },
    { chords: [{ key: 'z' }], label: 'Z', description: 'Zoom tool', group: 'Viewing', run: () => setTool('zoom') },
    { chords: [{ key: 'r' }], label: 'R', description: 'Reset zoom, pan and window', group: 'Viewing', run: resetView },
    ...WINDOW_PRESETS.map((p, i) => ({ chords: [{ key: String(i + 1), shift: true }], label: `Shift+${i + 1}`, description: `Window: ${p.label}`, group: 'Viewing' as const, run: () => applyPreset(i) })),
    { chords: [{ key: 'j' }, { key: 'PageDown' }], label: 'J / PgDn', description: 'Next slice (viewport under the mouse)', group: 'Viewing', run: () => scrollActive(1) },
    { chords: [{ key: 'k' }, { key: 'PageUp' }], label: 'K / PgUp', description: 'Previous slice', group: 'Viewing', run: () => scrollActive(-1) },
    { chords: [{ key: 'Home' }], label: 'Home', description: 'First slice', group: 'Viewing', run: () => scrollActive('first') },
    { chords: [{ key: 'End' }], label: 'End', description: 'Last slice', group: 'Viewing', run: () => scrollActive('last') },
    { chords: [{ key: 'v' }], label: 'V', description: 'Show / hide the AI mask', group: 'Viewing', run: () => aiPanel.toggleVisible() },
    { chords: [{ key: 'l' }], label: keyFor('length'), description: 'Canal AP diameter (length)', group: 'Measuring', run: () => setTool('length') },
    { chords: [{ key: 'a' }], label: keyFor('area'), description: 'Dural sac area (freehand outline)', group: 'Measuring', run: () => setTool('area') },
    { chords: [{ key: 'a', shift: true }], label: 'Shift+A', description: 'Dural sac area (spline)', group: 'Measuring', run: () => setTool('spline') },
    { chords: [{ key: 'd' }], label: keyFor('disc_height'), description: 'Disc height (anterior, middle, posterior pairs)', group: 'Measuring', run: () => setTool('discHeight') },
    { chords: [{ key: 'b' }], label: 'B', description: 'Brush', group: 'Segmenting', run: () => setTool('brush') },
    { chords: [{ key: 'e' }], label: 'E', description: 'Eraser', group: 'Segmenting', run: () => setTool('eraser') },
    { chords: [{ key: 't' }], label: 'T', description: 'Threshold brush', group: 'Segmenting', run: () => setTool('thresholdBrush') },
    { chords: [{ key: 's' }], label: 'S', description: 'Rectangle scissors', group: 'Segmenting', run: () => setTool('rectScissors') },
    { chords: [{ key: 's', shift: true }], label: 'Shift+S', description: 'Circle scissors', group: 'Segmenting', run: () => setTool('circleScissors') },
    { chords: [{ key: '[' }], label: '[', description: 'Smaller brush', group: 'Segmenting', run: () => segPanel.setRadius(segPanel.radius - 0.5) },
    { chords: [{ key: ']' }], label: ']', description: 'Larger brush', group: 'Segmenting', run: () => segPanel.setRadius(segPanel.radius + 0.5) },
    { chords: [{ key: 'x' }], label: 'X', description: 'Remove islands of the selected label on this slice', group: 'Segmenting', run: () => segPanel.element.querySelector<HTMLButtonElement>('#remove-islands')?.click() },
    { chords: [{ key: 'i' }], label: 'I', description: 'Interpolate the selected label between drawn slices', group: 'Segmenting', run: () => segPanel.interpolate() },
    ...(segSpec?.labels ?? []).slice(0, 9).map((l, i) => ({ chords: [{ key: String(i + 1), alt: true }], label: `Alt+${i + 1}`, description: `Paint ${l.label}`, group: 'Segmenting' as const, run: () => segPanel.pickLabel(i) })),
  ];
  const gradingHelp = [
    { label: '↑ ↓', description: 'Previous / next level (the axial images follow)', group: 'Grading' as const },
    { label: '← →', description: 'Previous / next question (grid focused)', group: 'Grading' as const },
    { label: '0–9', description: 'Grade the selected cell by the category\'s position, then move on', group: 'Grading' as const },
    { label: 'A B C …', description: 'Grade by category code (grid focused: click the grid or press G)', group: 'Grading' as const },
    { label: 'G', description: 'Focus the grading grid', group: 'Grading' as const },
    { label: 'Backspace', description: 'Clear the selected answer (grid focused)', group: 'Grading' as const },
  ];
  const help = buildHelpDialog(shortcuts, gradingHelp);
  root.appendChild(help);
  const toggleHelp = (): void => {
    if (help.open) help.close();
    else help.showModal();
  };
  helpButton.addEventListener('click', toggleHelp);
  document.addEventListener(
    'keydown',
    (e) => {
      if (e.defaultPrevented) return;
      if (help.open) {
        if (e.key === '?') {
          help.close();
          e.preventDefault();
        }
        return;
      }
      if (grading.dialog.open) return;
      if (isTyping(e.target) && e.key !== 'Escape') return;
      const shortcut = findShortcut(e, shortcuts.slice(0, 4));
      if (shortcut) {
        e.preventDefault();
        shortcut.run();
        return;
      }
      if (!e.ctrlKey && !e.metaKey && !e.altKey && grading.handleKey(e)) {
        e.preventDefault();
        return;
      }
      if (!e.ctrlKey && !e.metaKey && !e.altKey && !e.shiftKey && e.key.toLowerCase() === 'g') {
        grading.focusGrid();
        e.preventDefault();
        return;
      }
      const rest = findShortcut(e, shortcuts.slice(4));
      if (rest) {
        e.preventDefault();
        rest.run();
      }
    },
    true,
  );

  // ---- keep measurements, masks and compare in step ----
  measurements.sync();
  if (mine) {
    const m = mine;
    m.saver.onChange(() => {
      segPanel.refresh();
      if (compare?.diffVisible && m.saver.state.kind === 'saving') compare.refreshDiff();
    });
    store.onChange(() => {
      m.readOnly = store.readOnly;
    });
  }
  // A submitted (or conflicting) read locks editing: the tools say so by being disabled.
  const lockEditing = (): void => {
    const locked = store.readOnly;
    if (locked && tools.active !== 'windowLevel' && !['pan', 'zoom'].includes(tools.active)) tools.setPrimary('windowLevel');
    for (const [tool, button] of toolButtons) if (!['windowLevel', 'pan', 'zoom'].includes(tool)) button.disabled = locked;
    for (const id of ['tool-islands', 'tool-interpolate']) {
      const b = toolbar.querySelector<HTMLButtonElement>(`#${id}`);
      if (b) b.disabled = locked;
    }
    for (const b of sidebar.querySelectorAll<HTMLButtonElement>('#measurement-panel .sr-measure-add button, #segmentation-panel .sr-button-row button')) b.disabled = locked;
    if (store.submitted) {
      phaseBadge.textContent = store.phase === 'aided' || phase === 'aided' ? 'AI-aided read submitted' : 'Read submitted';
      phaseBadge.className = 'sr-badge sr-phase sr-phase-done';
    }
  };
  store.onChange(lockEditing);
  store.onChange(refreshUndo);
  lockEditing();

  // ---- two phases ----
  store.onSubmitted((read) => {
    if (protocol.two_phase && (read.phase ?? phase) === 'unaided') {
      notify('Unaided read submitted. Loading the AI-aided phase…');
      state.set('phase-transition', 'true');
      window.setTimeout(() => window.location.reload(), 800);
    }
  });
  window.addEventListener('beforeunload', (e) => {
    if (store.hasUnsavedChanges || mine?.saver.busy) e.preventDefault();
  });

  for (const part of parts.values()) if (part.stack) getEnabledElementByViewportId(part.panel.viewportId)?.viewport.render();
  if (state.state !== 'error') state.setState('ready');
}

/** A protocol colour ([r, g, b], 0-255) as a fixed triple. */
function rgbOf(color: readonly number[]): [number, number, number] {
  return [color[0] ?? 0, color[1] ?? 0, color[2] ?? 0];
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
