import type { Types } from '@cornerstonejs/core';
import { crossReferenceLine, type ImagePlane } from '../measurements/math/plane';

const SVG = 'http://www.w3.org/2000/svg';

export interface ReferenceLine {
  plane: ImagePlane;
  label: string;
  current: boolean;
}

/**
 * Draws where other images' planes cross this viewport's image: the current
 * axial slice as a solid line, each level's slice as a faint dashed line with
 * its name. Canvas coordinates come from the viewport (zoom and pan apply).
 */
export function drawReferenceLines(svg: SVGSVGElement, viewport: Types.IStackViewport, target: ImagePlane | null, lines: ReferenceLine[]): number {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  if (!target) return 0;
  const { width, height } = svg.getBoundingClientRect();
  svg.setAttribute('viewBox', `0 0 ${Math.max(1, width)} ${Math.max(1, height)}`);
  let drawn = 0;
  for (const line of lines) {
    const seg = crossReferenceLine(line.plane, target);
    if (!seg) continue;
    const a = viewport.worldToCanvas([...seg[0]] as Types.Point3);
    const b = viewport.worldToCanvas([...seg[1]] as Types.Point3);
    const el = document.createElementNS(SVG, 'line');
    el.setAttribute('x1', String(a[0]));
    el.setAttribute('y1', String(a[1]));
    el.setAttribute('x2', String(b[0]));
    el.setAttribute('y2', String(b[1]));
    el.setAttribute('class', line.current ? 'sr-xref sr-xref-current' : 'sr-xref sr-xref-level');
    svg.appendChild(el);
    if (line.label) {
      const left = a[0] <= b[0] ? a : b;
      const text = document.createElementNS(SVG, 'text');
      text.setAttribute('x', String(Math.max(4, left[0] + 4)));
      text.setAttribute('y', String(left[1] - 3));
      text.setAttribute('class', line.current ? 'sr-xref-label sr-xref-label-current' : 'sr-xref-label');
      text.textContent = line.label;
      svg.appendChild(text);
    }
    drawn++;
  }
  return drawn;
}
