/**
 * HTML building blocks shared by the report's layout and plots: escaping,
 * number formats, cluster colours and marker shapes, and the render context.
 * @internal
 * @module
 */
import type { ClassLabel } from '../analysis/metrics.js';
import type { ReportData } from './data.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes `& < > " '` so that any string is safe as HTML text or a quoted attribute value. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}
export const esc = escapeHtml;

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export const msFormat = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

export function fmtInt(v: number): string {
  return intFormat.format(v);
}
export function fmtScore(v: number, digits = 3): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '—';
}
/** Short number for SVG coordinates. */
export function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** Categorical colours (Tableau 10), then golden-angle hues. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#79706e'];
export const UNASSIGNED = '#b8bec6';

export function clusterColor(rank: number): string {
  if (rank < PALETTE.length) return PALETTE[rank]!;
  const hue = Math.round((rank * 137.508) % 360);
  return `hsl(${hue} 55% ${rank % 2 ? 42 : 55}%)`;
}

/** Filled marker outlines centred on (0, 0), about 9 px across. */
export const MARKERS = [
  '<circle r="4.2"/>',
  '<rect x="-3.7" y="-3.7" width="7.4" height="7.4"/>',
  '<path d="M0-5 4.6 3.2H-4.6Z"/>',
  '<path d="M0-5.2 5.2 0 0 5.2-5.2 0Z"/>',
  '<path d="M0 5-4.6-3.2H4.6Z"/>',
  '<path d="M-1.6-5h3.2v3.4H5v3.2H1.6V5h-3.2V1.6H-5v-3.2h3.4Z"/>',
  '<path d="M-3.5-5.2 0-1.7 3.5-5.2 5.2-3.5 1.7 0 5.2 3.5 3.5 5.2 0 1.7-3.5 5.2-5.2 3.5-1.7 0-5.2-3.5Z"/>',
  '<path d="M0-5.5 1.3-1.8 5.2-1.7 2.1.7 3.2 4.5 0 2.3-3.2 4.5-2.1.7-5.2-1.7-1.3-1.8Z"/>',
  '<path d="M0-5 4.3-2.5V2.5L0 5-4.3 2.5V-2.5Z"/>',
  '<path d="M0-5 4.8-1.5 2.9 4.1H-2.9L-4.8-1.5Z"/>',
];

export interface Ctx {
  data: ReportData;
  maxSamples: number;
  colorOf: (cluster: number) => string;
  clusterName: (cluster: number) => string;
  matchOf: Map<number, ClassLabel | null>;
  labelOrder: ClassLabel[];
}

export function swatch(color: string): string {
  return `<span class="swatch" style="background:${esc(color)}" aria-hidden="true"></span>`;
}

export function markerSvg(shape: number, fill: string): string {
  return `<svg viewBox="-6 -6 12 12" aria-hidden="true" focusable="false"><g fill="${esc(fill)}" stroke="#fff" stroke-width=".6">${MARKERS[shape % MARKERS.length]!}</g></svg>`;
}

export function fmtNumber(v: number): string {
  return Number.isInteger(v) ? fmtInt(v) : Number.isFinite(v) ? String(Math.round(v * 1e4) / 1e4) : '—';
}

export function section(id: string, title: string, body: string): string {
  return `<section id="${esc(id)}" aria-labelledby="${esc(id)}-h">\n<h2 id="${esc(id)}-h">${esc(title)}</h2>\n${body}\n</section>`;
}
