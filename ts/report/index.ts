/**
 * The end-of-run HTML report: one self-contained document (inline CSS and
 * SVG, images as `data:` URLs, no script, a Content-Security-Policy that
 * forbids every network fetch) that opens offline and prints cleanly.
 *
 * ```ts
 * import { discover, buildReportData, writeReport } from 'anomalyncd';
 * const result = await discover(items, { k: 'auto', backbone: 'dino_vitbase8_pretrain.pth' });
 * await writeReport('out/report.html', buildReportData(result, { dataset: 'bottle' }));
 * ```
 * {@link ReportData} can also be filled by hand. Every string from the caller
 * is HTML-escaped; image sources must be `data:image/…;base64,` URLs.
 *
 * The parts: data.ts (what the report shows, its checks, and the builder from
 * a discover run), layout.ts (the page and its plain sections), plots.ts (the
 * charts), html.ts (escaping, formats, colours).
 * @module
 */
import { resolveOptions } from '../core/options.js';
import { writeFileAtomic } from '../io/files.js';
import { RENDER_REPORT_OPTIONS, validateReportData, type ReportData, type RenderReportOptions } from './data.js';
import { renderPage } from './layout.js';

export {
  buildReportData,
  type DiscoverReportOptions,
  type EmbeddingPoint,
  type KChoice,
  type RenderReportOptions,
  type ReportCluster,
  type ReportConfusion,
  type ReportData,
  type ReportEmbedding,
  type ReportFact,
  type ReportKCurve,
  type ReportMetrics,
  type ReportSample,
  type ReportSummary,
  type StageTiming,
} from './data.js';

/**
 * Renders the report as one self-contained HTML5 document (UTF-8). The output
 * depends only on `data` and `options`.
 * @throws {@link InvalidArgumentError} when `data` is malformed (the message names the field).
 */
export function renderReport(data: ReportData, options: RenderReportOptions = {}): string {
  const { maxSamplesPerCluster } = resolveOptions(RENDER_REPORT_OPTIONS, options);
  validateReportData(data, maxSamplesPerCluster);
  return renderPage(data, maxSamplesPerCluster);
}

/** Renders the report and writes it atomically to `path` (parent folders are created). */
export async function writeReport(path: string, data: ReportData, options: RenderReportOptions = {}): Promise<void> {
  await writeFileAtomic(path, renderReport(data, options));
}
