import { Enums, RenderingEngine, utilities as csUtils, type Types } from '@cornerstonejs/core';
import dicomImageLoader from '@cornerstonejs/dicom-image-loader';
import { ApiClient, readCookie } from '../api/client';
import { buildSeriesStack, fetchSeriesMetadata } from '../api/dicomweb';
import type { PairValue, ReadersComparison } from '../api/types';
import { LabelmapLayer } from '../segmentation/layer';
import { compareMasks } from '../segmentation/ops';
import { ReadingTools } from '../tools/readingTools';
import { clear, describeError, h } from '../ui/dom';
import { RootState } from '../ui/rootState';
import { initCornerstone } from '../viewer/init';
import { SeriesPanel } from '../viewer/seriesPanel';

const ENGINE_ID = 'spinereview-reader-compare';
/** Reader A and reader B, whatever the structure: two hues that stay apart on grey MR. */
export const READER_COLOURS = { a: [255, 150, 0] as const, b: [40, 130, 255] as const };
/** Difference codes of compareMasks(A, B): 1 both, 2 B only, 3 A only. */
const DIFF_SEGMENTS = [
  { value: 1, label: 'Both readers', color: [60, 200, 90] as const },
  { value: 2, label: 'Only B', color: [40, 200, 255] as const },
  { value: 3, label: 'Only A', color: [240, 60, 200] as const },
];

function fmt(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined ? '—' : v.toFixed(digits);
}

function signed(v: number | null | undefined): string {
  return v === null || v === undefined ? '—' : `${v > 0 ? '+' : ''}${v.toFixed(1)}`;
}

function pairCells(v: PairValue): HTMLElement[] {
  const title = (source: string): string => (source === 'measured' ? "the reader's measurement" : source === 'mask' ? "from the reader's mask" : '');
  return [
    h('td', { title: title(v.source_a), class: v.source_a === 'mask' ? 'sr-from-mask' : '' }, fmt(v.a)),
    h('td', { title: title(v.source_b), class: v.source_b === 'mask' ? 'sr-from-mask' : '' }, fmt(v.b)),
    h('td', { class: v.delta !== null && v.delta !== undefined && Math.abs(v.delta) > 0 ? 'sr-delta' : '' }, signed(v.delta)),
  ];
}

/**
 * Reader vs reader, for a study's adjudicators and leads: pick two readers;
 * their masks in two colours on the segmented series (or the difference view:
 * both, only A, only B), Dice per structure, per-level DSCA / AP / disc height
 * with B − A, and the grade differences.
 */
export async function mountReaderCompare(root: HTMLElement): Promise<void> {
  const state = new RootState(root);
  state.setState('loading');
  root.classList.add('sr-root');
  const data = root.dataset;
  const caseId = data.caseId ?? '';
  const studyUid = data.studyUid ?? '';
  const seriesUid = data.seriesUid ?? '';
  const dicomwebBase = data.dicomwebBase || '/dicomweb';
  const api = new ApiClient({ apiBase: data.apiBase || '/api/v1', csrfToken: () => readCookie(document.cookie, 'csrftoken') });
  const readersScript = document.getElementById('compare-readers-list');
  const readers: string[] = readersScript?.textContent ? (JSON.parse(readersScript.textContent) as string[]) : [];

  const select = (id: string, label: string, value: string): HTMLSelectElement => {
    const el = h('select', { id, 'aria-label': label }, ...readers.map((r) => h('option', { value: r }, r)));
    el.value = value;
    return el;
  };
  const pickA = select('reader-a', 'Reader A', data.readerA ?? '');
  const pickB = select('reader-b', 'Reader B', data.readerB ?? '');
  const compareButton = h('button', { type: 'button', class: 'sr-btn', id: 'compare-readers-go' }, 'Compare');
  const message = h('p', { class: 'sr-hint', id: 'compare-message', role: 'status' });
  const body = h('div', { class: 'sr-compare-body', id: 'readers-compare-body' });
  const showA = h('input', { type: 'checkbox', id: 'show-a', checked: true });
  const showB = h('input', { type: 'checkbox', id: 'show-b', checked: true });
  const diffToggle = h('input', { type: 'checkbox', id: 'toggle-diff' });
  const diffStructure = h('select', { id: 'diff-structure', 'aria-label': 'Structure' }, h('option', { value: '' }, 'All structures'));
  const swatch = (rgb: readonly number[], text: string, id: string): HTMLElement =>
    h('span', { class: 'sr-diff-key', id }, h('span', { class: 'sr-swatch', style: `background: rgb(${rgb.join(',')})` }), text);
  const legendA = swatch(READER_COLOURS.a, 'A', 'legend-a');
  const legendB = swatch(READER_COLOURS.b, 'B', 'legend-b');
  const panel = new SeriesPanel('axial', data.seriesDescription || 'Segmented series');
  const sidebar = h(
    'aside',
    { class: 'sr-sidebar' },
    h(
      'section',
      { class: 'sr-card sr-compare', id: 'readers-compare-panel', 'aria-label': 'Reader vs reader' },
      h('header', { class: 'sr-card-header' }, h('h2', {}, 'Compare: reader vs reader')),
      h('div', { class: 'sr-diff-controls sr-reader-pick' }, h('label', {}, 'A ', pickA), h('label', {}, 'B ', pickB), compareButton),
      h(
        'div',
        { class: 'sr-diff-controls' },
        h('label', { class: 'sr-switch', for: 'show-a' }, showA, legendA),
        h('label', { class: 'sr-switch', for: 'show-b' }, showB, legendB),
      ),
      h(
        'div',
        { class: 'sr-diff-controls' },
        h('label', { class: 'sr-switch', for: 'toggle-diff' }, diffToggle, h('span', {}, 'Difference view')),
        diffStructure,
        h('div', { class: 'sr-diff-legend' }, ...DIFF_SEGMENTS.map((s) => swatch(s.color, s.label, `legend-diff-${s.value}`))),
      ),
      message,
      body,
    ),
  );
  const back = data.adjudicateUrl ? h('a', { href: data.adjudicateUrl, class: 'sr-btn sr-btn-small', id: 'back-to-adjudication' }, '← Adjudication') : null;
  root.replaceChildren(
    h(
      'div',
      { class: 'sr-app' },
      h('div', { class: 'sr-topbar' }, h('span', { class: 'sr-case', id: 'case-label' }, data.caseLabel ?? ''), h('span', { class: 'sr-topbar-meta' }, 'Reader vs reader'), h('span', { class: 'sr-topbar-spacer' }), back),
      h('div', { class: 'sr-main' }, h('div', { class: 'sr-viewports sr-viewports-1' }, panel.container), sidebar),
    ),
  );

  if (readers.length < 2) {
    message.textContent = 'Fewer than two readers have submitted this case: nothing to compare yet.';
    panel.setMessage('No comparison');
    state.setState('ready');
    return;
  }

  // ---- the segmented series ----
  let engine: RenderingEngine | null = null;
  let stack: ReturnType<typeof buildSeriesStack> | null = null;
  if (!seriesUid) {
    panel.setMessage('This case has no segmented series');
  } else {
    try {
      const metadata = fetchSeriesMetadata(dicomwebBase, studyUid, seriesUid);
      await initCornerstone();
      engine = new RenderingEngine(ENGINE_ID);
      panel.enable(engine);
      stack = buildSeriesStack(await metadata, { origin: window.location.origin, dicomwebBase, study: studyUid, series: seriesUid }, (imageId, instance) =>
        dicomImageLoader.wadors.metaDataManager.add(imageId, instance as unknown as Parameters<typeof dicomImageLoader.wadors.metaDataManager.add>[1]),
      );
      if (stack.imageIds.length === 0) throw new Error('the series has no images');
      await panel.showStack(engine, stack.imageIds, 'middle', () => state.imageRendered('axial'));
      new ReadingTools([{ viewportId: panel.viewportId, canSegment: false }], ENGINE_ID);
      new ResizeObserver(() => engine?.resize(true, true)).observe(panel.container);
    } catch (err) {
      panel.setError(`The images could not be loaded — ${describeError(err)}`);
      stack = null;
    }
  }
  const viewport = (): Types.IStackViewport | null => (engine ? (engine.getViewport(panel.viewportId) as Types.IStackViewport) : null);

  // ---- layers: A, B, difference; rebuilt for each pair ----
  let layers: { a: LabelmapLayer; b: LabelmapLayer; diff: LabelmapLayer; volumeA: Uint8Array; volumeB: Uint8Array } | null = null;
  let generation = 0;
  const render = (): void => viewport()?.render();
  const applyVisibility = (): void => {
    if (!layers) return;
    const diffOn = diffToggle.checked;
    if (diffOn) {
      const label = diffStructure.value === '' ? null : Number(diffStructure.value);
      layers.diff.write(compareMasks(layers.volumeA, layers.volumeB, label));
    }
    layers.diff.setVisible(diffOn);
    layers.a.setVisible(!diffOn && showA.checked);
    layers.b.setVisible(!diffOn && showB.checked);
    state.set('diff-view', diffOn ? 'on' : null);
    render();
  };
  for (const el of [showA, showB, diffToggle, diffStructure]) el.addEventListener('change', applyVisibility);

  const layerOf = async (id: string, label: string, segments: Array<{ value: number; label: string; color: readonly [number, number, number] }>, volume: Uint8Array, style: { fill: boolean; outline: boolean; alpha: number }): Promise<LabelmapLayer> => {
    const layer = new LabelmapLayer({
      segmentationId: id,
      label,
      viewportId: panel.viewportId,
      imageIds: stack!.imageIds,
      sopByImageId: stack!.sopByImageId,
      zSops: stack!.spatialSops,
      rows: stack!.rows,
      columns: stack!.columns,
      segments,
      locked: true,
      style,
    });
    await layer.add(volume);
    return layer;
  };

  const load = async (): Promise<void> => {
    const a = pickA.value;
    const b = pickB.value;
    const mine = ++generation;
    clear(body);
    state.set('compare-loaded', null);
    if (a === b) {
      message.textContent = 'Pick two different readers.';
      return;
    }
    message.textContent = `Comparing ${a} (A) with ${b} (B)…`;
    const url = new URL(window.location.href);
    url.searchParams.set('a', a);
    url.searchParams.set('b', b);
    window.history.replaceState(null, '', url);
    legendA.lastChild!.textContent = `A: ${a}`;
    legendB.lastChild!.textContent = `B: ${b}`;
    let c: ReadersComparison;
    try {
      c = await api.getReadersComparison(caseId, a, b);
    } catch (err) {
      if (mine !== generation) return;
      message.textContent = `Comparison not available: ${describeError(err)}`;
      return;
    }
    if (mine !== generation) return;
    renderTables(c);
    clear(diffStructure);
    diffStructure.append(h('option', { value: '' }, 'All structures'), ...c.labels.map((l) => h('option', { value: l.value }, l.label)));
    message.textContent = `${c.grade_differences} grade difference${c.grade_differences === 1 ? '' : 's'}; B − A in every Δ.`;

    // masks
    if (layers) {
      for (const layer of [layers.a, layers.b, layers.diff]) layer.setVisible(false);
      layers = null;
    }
    const pair = c.series.find((s) => s.series_instance_uid === seriesUid);
    if (!stack || !pair) {
      state.set('masks', 'none');
      if (stack) body.prepend(h('p', { class: 'sr-hint', id: 'no-masks' }, 'The two readers have no masks of this series to compare.'));
      state.set('compare-loaded', 'true');
      return;
    }
    try {
      const [volumeA, volumeB] = await Promise.all([api.getReaderMask(caseId, a, seriesUid), api.getReaderMask(caseId, b, seriesUid)]);
      if (mine !== generation) return;
      const segs = (rgb: readonly [number, number, number]): Array<{ value: number; label: string; color: readonly [number, number, number] }> =>
        c.labels.map((l) => ({ value: l.value, label: l.label, color: rgb }));
      const key = `${caseId}-${mine}`;
      const layerA = await layerOf(`pair-a-${key}`, `A ${a}`, segs(READER_COLOURS.a), volumeA, { fill: true, outline: true, alpha: 0.5 });
      const layerB = await layerOf(`pair-b-${key}`, `B ${b}`, segs(READER_COLOURS.b), volumeB, { fill: true, outline: true, alpha: 0.5 });
      const diff = await layerOf(`pair-diff-${key}`, 'A vs B', DIFF_SEGMENTS.map((s) => ({ ...s })), new Uint8Array(volumeA.length), { fill: true, outline: false, alpha: 0.6 });
      layers = { a: layerA, b: layerB, diff, volumeA, volumeB };
      // Open where the readers differ most, so the difference is on screen.
      const plane = stack.rows * stack.columns;
      let best = -1;
      let bestCount = 0;
      for (let z = 0; z * plane < volumeA.length; z++) {
        let n = 0;
        for (let i = z * plane; i < (z + 1) * plane; i++) if ((volumeA[i]! > 0) !== (volumeB[i]! > 0) || (volumeA[i]! > 0 && volumeA[i] !== volumeB[i])) n++;
        if (n > bestCount) [best, bestCount] = [z, n];
      }
      const sop = best >= 0 ? stack.spatialSops[best] : undefined;
      const index = sop ? stack.imageIds.findIndex((id) => stack!.sopByImageId.get(id) === sop) : -1;
      const vp = viewport();
      if (index >= 0 && vp) {
        await vp.setImageIdIndex(index);
        // ... and zoomed on the masks of that slice (both readers'), which are small on a whole axial image.
        let sumRow = 0;
        let sumCol = 0;
        let n = 0;
        for (let i = best * plane; i < (best + 1) * plane; i++) {
          if (volumeA[i]! > 0 || volumeB[i]! > 0) {
            const p = i - best * plane;
            sumRow += Math.floor(p / stack.columns);
            sumCol += p % stack.columns;
            n++;
          }
        }
        if (n > 0) {
          const focal = csUtils.imageToWorldCoords(stack.imageIds[index]!, [sumCol / n, sumRow / n]) as Types.Point3;
          const camera = vp.getCamera();
          const offset = [0, 1, 2].map((k) => camera.position![k]! - camera.focalPoint![k]!);
          vp.setCamera({ focalPoint: focal, position: [focal[0] + offset[0]!, focal[1] + offset[1]!, focal[2] + offset[2]!] });
          vp.setZoom(3);
        }
      }
      applyVisibility();
      state.set('masks', 'shown');
      state.overlayRendered();
    } catch (err) {
      body.prepend(h('p', { class: 'sr-ai-error' }, `Masks could not be shown — ${describeError(err)}`));
    }
    state.set('compare-loaded', 'true');
  };

  const renderTables = (c: ReadersComparison): void => {
    clear(body);
    const dice = h(
      'table',
      { class: 'sr-compare-table', id: 'compare-dice' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Structure'), h('th', {}, 'Dice'), h('th', {}, 'A (vox)'), h('th', {}, 'B (vox)'), h('th', {}, 'only A'), h('th', {}, 'only B'))),
      h(
        'tbody',
        {},
        ...c.structures.map((s) =>
          h(
            'tr',
            { 'data-structure': s.name },
            h('td', {}, s.name.replace(/_/g, ' ')),
            h('td', { class: 'sr-dice' }, fmt(s.dice, 3)),
            h('td', {}, String(s.a_voxels)),
            h('td', {}, String(s.b_voxels)),
            h('td', {}, String(s.only_a_voxels)),
            h('td', {}, String(s.only_b_voxels)),
          ),
        ),
      ),
    );
    const levels = h(
      'table',
      { class: 'sr-compare-table', id: 'compare-levels' },
      h(
        'thead',
        {},
        h('tr', {}, h('th', { rowspan: 2 }, 'Level'), h('th', { colspan: 3 }, 'DSCA mm²'), h('th', { colspan: 3 }, 'AP mm'), h('th', { colspan: 3 }, 'Disc height mm'), h('th', { rowspan: 2 }, 'Grades (A / B)')),
        h('tr', {}, ...['A', 'B', 'Δ', 'A', 'B', 'Δ', 'A', 'B', 'Δ'].map((t) => h('th', {}, t))),
      ),
      h(
        'tbody',
        {},
        ...c.levels.map((l) =>
          h(
            'tr',
            { 'data-level': l.level, class: l.grades.some((g) => g.differs) ? 'sr-row-differs' : '' },
            h('th', {}, l.level),
            ...pairCells(l.dsca_mm2),
            ...pairCells(l.ap_diameter_mm),
            ...pairCells(l.disc_height_mm),
            h('td', {}, ...l.grades.map((g) => h('span', { class: `sr-grade-pair${g.differs ? ' sr-differs' : ''}`, title: g.condition, 'data-condition': g.condition }, `${g.a ?? '—'} / ${g.b ?? '—'}`))),
          ),
        ),
      ),
    );
    body.append(
      h('h3', {}, 'Dice per structure'),
      c.structures.length > 0 ? dice : h('p', { class: 'sr-hint' }, 'No masks of the same series from both readers.'),
      h('h3', {}, 'Per level'),
      levels,
      h('p', { class: 'sr-hint' }, 'Values in italics come from the reader’s mask; the others are the reader’s own measurements.'),
    );
  };

  compareButton.addEventListener('click', () => void load());
  pickA.addEventListener('change', () => void load());
  pickB.addEventListener('change', () => void load());
  await load();
  // The viewport scrolls on the wheel; the panel's loading bar follows the prefetch.
  panel.element.addEventListener(Enums.Events.IMAGE_RENDERED, () => state.set('image-rendered', 'true'));
  state.setState('ready');
}
