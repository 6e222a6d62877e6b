/**
 * The report's charts: the cluster × label heat-map table, the 2-D embedding
 * scatter (SVG) and the K-estimation curve (SVG). Each returns one section.
 * @internal
 * @module
 */
import type { ClassLabel } from '../analysis/metrics.js';
import type { ReportConfusion, ReportEmbedding, ReportKCurve } from './data.js';
import { esc, fmtNumber, fmtScore, MARKERS, markerSvg, num, section, swatch, type Ctx } from './html.js';

function heat(t: number): { bg: string; fg: string } {
  // #f7fbff → #08519c
  const lerp = (a: number, b: number): number => Math.round(a + (b - a) * t);
  const bg = `rgb(${lerp(247, 8)},${lerp(251, 81)},${lerp(255, 156)})`;
  return { bg, fg: t > 0.5 ? '#fff' : '#1f2328' };
}

export function renderConfusion(ctx: Ctx, cm: ReportConfusion): string {
  const unit = cm.unit ?? 'images';
  let max = 0;
  for (const row of cm.counts) for (const v of row) max = Math.max(max, v);
  const colTotals = cm.labels.map((_, c) => cm.counts.reduce((s, row) => s + row[c]!, 0));
  const total = colTotals.reduce((a, b) => a + b, 0);
  const head = `<thead><tr><th scope="col">Cluster ↓ · true label →</th>${cm.labels.map((l) => `<th scope="col">${esc(l)}</th>`).join('')}<th scope="col" class="num">Total</th></tr></thead>`;
  const body = cm.clusters
    .map((cluster, r) => {
      const row = cm.counts[r]!;
      const matched = ctx.matchOf.get(cluster);
      const cells = row
        .map((v, c) => {
          const label = cm.labels[c]!;
          const isMatch = matched !== undefined && matched !== null && matched === label;
          const { bg, fg } = heat(max > 0 ? v / max : 0);
          const cls = `cell${v === 0 ? ' zero' : ''}${isMatch ? ' match' : ''}`;
          return `<td class="${cls}" data-count="${esc(v)}" style="background:${bg};color:${fg}">${esc(fmtNumber(v))}${isMatch ? '<span class="vh"> (matched)</span>' : ''}</td>`;
        })
        .join('');
      const rowTotal = row.reduce((a, b) => a + b, 0);
      const note = matched === null ? ' <span class="note">(unmatched)</span>' : '';
      return `<tr><th scope="row">${swatch(ctx.colorOf(cluster))}${esc(ctx.clusterName(cluster))}${note}</th>${cells}<td class="num">${esc(fmtNumber(rowTotal))}</td></tr>`;
    })
    .join('');
  const foot = `<tfoot><tr><th scope="row">Total</th>${colTotals.map((v) => `<td class="num">${esc(fmtNumber(v))}</td>`).join('')}<td class="num" data-total="${esc(total)}">${esc(fmtNumber(total))}</td></tr></tfoot>`;
  const mappingNote = cm.mapping ? ' Outlined cells: the Hungarian matching of clusters to labels used for F1.' : '';
  return section(
    'confusion',
    'Clusters vs. true labels',
    `<div class="scroll"><table class="confusion">${head}<tbody>${body}</tbody>${foot}<caption>Number of ${esc(unit)} per discovered cluster (rows) and true label (columns); darker = more.${mappingNote}</caption></table></div>`,
  );
}

export function renderEmbedding(ctx: Ctx, emb: ReportEmbedding): string {
  const W = 720, H = 420, pad = 20;
  const pts = emb.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const skipped = emb.points.length - pts.length;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const p of pts) {
    x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x);
    y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y);
  }
  const rx = x1 - x0 || 1, ry = y1 - y0 || 1;
  const scale = Math.min((W - 2 * pad) / rx, (H - 2 * pad) / ry); // equal aspect: distances are honest
  const ox = (W - rx * scale) / 2 - x0 * scale;
  const oy = (H - ry * scale) / 2 + y1 * scale; // y up
  const hasLabels = pts.some((p) => p.label !== undefined);
  const labels = hasLabels ? ctx.labelOrder.filter((l) => pts.some((p) => p.label === l)) : [];
  const shapeOf = new Map<ClassLabel, number>(labels.map((l, i) => [l, i]));
  const usedShapes = hasLabels ? Math.min(MARKERS.length, labels.length + (pts.some((p) => p.label === undefined) ? 1 : 0)) : 1;
  const defs = MARKERS.slice(0, Math.max(usedShapes, 1)).map((m, i) => `<g id="mk${i}" transform="scale(1.3)">${m}</g>`).join('');
  const withTitles = pts.length <= 4000;
  // Draw larger clusters first so that small ones stay visible.
  const size = new Map<number, number>();
  for (const p of pts) size.set(p.cluster, (size.get(p.cluster) ?? 0) + 1);
  const order = pts.map((_, i) => i).sort((a, b) => size.get(pts[b]!.cluster)! - size.get(pts[a]!.cluster)! || a - b);
  const marks = order
    .map((i) => {
      const p = pts[i]!;
      const shape = hasLabels ? (p.label === undefined ? labels.length : shapeOf.get(p.label)!) % MARKERS.length : 0;
      const title = withTitles ? `<title>${esc(ctx.clusterName(p.cluster))}${p.label !== undefined ? ` · true label ${esc(p.label)}` : ''}</title>` : '';
      return `<use href="#mk${shape}" x="${num(ox + p.x * scale)}" y="${num(oy - p.y * scale)}" fill="${esc(ctx.colorOf(p.cluster))}">${title}</use>`;
    })
    .join('');
  const clusters = [...new Set(pts.map((p) => p.cluster))].sort((a, b) => a - b);
  const method = emb.method ?? 'PCA';
  const desc = `Scatter plot of ${pts.length} crops in 2-D (${method}), coloured by cluster${hasLabels ? ', marker shape by true label' : ''}.`;
  const svg =
    `<svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="emb-t emb-d">` +
    `<title id="emb-t">Embedding of the crops</title><desc id="emb-d">${esc(desc)}</desc>` +
    `<defs>${defs}</defs><rect x=".5" y=".5" width="${W - 1}" height="${H - 1}" fill="#fbfcfd" stroke="#e1e6eb" rx="6"/>` +
    `<g stroke="#fff" stroke-width=".7" fill-opacity=".92">${marks}</g></svg>`;
  const legend =
    `<ul class="legend" aria-label="Cluster colours"><li class="title">Cluster</li>${clusters
      .map((c) => `<li>${swatch(ctx.colorOf(c))}${esc(ctx.clusterName(c))}</li>`)
      .join('')}</ul>` +
    (hasLabels
      ? `<ul class="legend" aria-label="True-label shapes"><li class="title">True label</li>${labels
          .map((l, i) => `<li>${markerSvg(i, '#57606a')}${esc(l)}</li>`)
          .join('')}${pts.some((p) => p.label === undefined) ? `<li>${markerSvg(labels.length, '#57606a')}unknown</li>` : ''}</ul>`
      : '');
  const extra = skipped > 0 ? ` ${skipped} point(s) with non-finite coordinates are not shown.` : '';
  return section(
    'embedding',
    'Embedding',
    `<figure class="chart">${svg}${legend}<figcaption class="note">${esc(desc)} Nearby crops have similar features; axes are arbitrary.${esc(extra)}</figcaption></figure>`,
  );
}

function niceStep(range: number, target: number): number {
  const raw = range / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

export function renderKCurve(ctx: Ctx, kc: ReportKCurve): string {
  const pts = [...kc.curve].sort((a, b) => a.k - b.k);
  const finite = pts.filter((p) => Number.isFinite(p.score));
  const scoreName = kc.scoreName ?? 'mean silhouette';
  const chosen = kc.chosen ?? (pts.some((p) => p.k === ctx.data.summary.k) ? ctx.data.summary.k : undefined);
  const W = 520, H = 260, ml = 66, mr = 18, mt = 16, mb = 44;
  const kMin = pts.length ? pts[0]!.k : 0, kMax = pts.length ? pts[pts.length - 1]!.k : 1;
  let sMin = Math.min(...finite.map((p) => p.score)), sMax = Math.max(...finite.map((p) => p.score));
  if (!finite.length) { sMin = 0; sMax = 1; }
  if (sMax - sMin < 1e-9) { sMin -= 0.05; sMax += 0.05; }
  const step = niceStep(sMax - sMin, 4);
  const lo = Math.floor(sMin / step) * step, hi = Math.ceil(sMax / step) * step;
  const X = (k: number): number => ml + (kMax === kMin ? (W - ml - mr) / 2 : ((k - kMin) / (kMax - kMin)) * (W - ml - mr));
  const Y = (s: number): number => mt + (1 - (s - lo) / (hi - lo || 1)) * (H - mt - mb);
  const grid: string[] = [];
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  for (let v = lo, i = 0; v <= hi + step / 2 && i < 20; v += step, i++) {
    const y = num(Y(v));
    grid.push(`<line x1="${ml}" x2="${W - mr}" y1="${y}" y2="${y}" stroke="#e6eaef"/><text x="${ml - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(v.toFixed(Math.min(digits + 1, 4)))}</text>`);
  }
  const kStep = Math.max(1, Math.ceil((kMax - kMin + 1) / 14));
  for (let k = kMin; k <= kMax; k += kStep) grid.push(`<text x="${num(X(k))}" y="${H - mb + 18}" text-anchor="middle">${k}</text>`);
  const path = finite.map((p, i) => `${i ? 'L' : 'M'}${num(X(p.k))} ${num(Y(p.score))}`).join('');
  const chosenPt = finite.find((p) => p.k === chosen);
  const dots = finite
    .map((p) => `<circle cx="${num(X(p.k))}" cy="${num(Y(p.score))}" r="${p === chosenPt ? 6 : 3.5}" fill="${p === chosenPt ? '#cf222e' : '#0969da'}" stroke="#fff" stroke-width="1.5"><title>K = ${p.k}: ${esc(fmtScore(p.score))}</title></circle>`)
    .join('');
  const chosenMark = chosenPt
    ? `<line x1="${num(X(chosenPt.k))}" x2="${num(X(chosenPt.k))}" y1="${mt}" y2="${H - mb}" stroke="#cf222e" stroke-dasharray="4 3"/>` +
      `<text x="${num(X(chosenPt.k) + (X(chosenPt.k) > W - 110 ? -6 : 6))}" y="${mt + 12}" text-anchor="${X(chosenPt.k) > W - 110 ? 'end' : 'start'}" fill="#cf222e" font-weight="600">chosen K = ${chosenPt.k}</text>`
    : '';
  const desc = `Line chart of ${scoreName} against the number of clusters K for K = ${kMin}…${kMax}${chosen !== undefined ? `; chosen K = ${chosen}` : ''}.`;
  const svg =
    `<svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="kc-t kc-d" font-size="12" fill="#59636e">` +
    `<title id="kc-t">K estimation</title><desc id="kc-d">${esc(desc)}</desc>${grid.join('')}` +
    `<line x1="${ml}" x2="${W - mr}" y1="${H - mb}" y2="${H - mb}" stroke="#8c959f"/>` +
    `<text x="${(ml + W - mr) / 2}" y="${H - 6}" text-anchor="middle" fill="#1f2328">number of clusters K</text>` +
    `<text transform="translate(14 ${(mt + H - mb) / 2}) rotate(-90)" text-anchor="middle" fill="#1f2328">${esc(scoreName)}</text>` +
    `${chosenMark}<path d="${path}" fill="none" stroke="#0969da" stroke-width="2" stroke-linejoin="round"/>${dots}</svg>`;
  const rows = pts.map((p) => `<tr${p.k === chosen ? ' class="best"' : ''}><td class="num">${p.k}</td><td class="num">${esc(fmtScore(p.score))}</td></tr>`).join('');
  return section(
    'k-estimation',
    'Choice of K',
    `<figure class="chart small">${svg}<figcaption class="note">${esc(desc)}</figcaption></figure>` +
      `<details><summary>Values</summary><table><thead><tr><th scope="col" class="num">K</th><th scope="col" class="num">${esc(scoreName)}</th></tr></thead><tbody>${rows}</tbody></table></details>`,
  );
}
