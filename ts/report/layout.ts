/**
 * The report's page: the style sheet, the document skeleton with its table of
 * contents, and the non-chart sections (warnings, summary, quality table,
 * cluster galleries, timings). The charts come from plots.ts.
 * @internal
 * @module
 */
import type { ClassLabel } from '../analysis/metrics.js';
import { compareLabels, type ReportCluster, type ReportData, type ReportMetrics, type StageTiming } from './data.js';
import { clusterColor, esc, fmtInt, fmtNumber, fmtScore, msFormat, num, section, swatch, UNASSIGNED, type Ctx } from './html.js';
import { renderConfusion, renderEmbedding, renderKCurve } from './plots.js';

const CSS = `
:root{--fg:#1f2328;--muted:#59636e;--bg:#fff;--card:#f6f8fa;--border:#d1d9e0;--accent:#0969da;--warn-bg:#fff8c5;--warn-border:#bf8700;--bad:#cf222e}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Helvetica Neue",Arial,sans-serif}
.skip{position:absolute;left:-9999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.4rem .6rem;z-index:1}
main{max-width:1120px;margin:0 auto;padding:28px 28px 56px}
header.page{border-bottom:1px solid var(--border);padding-bottom:14px;margin-bottom:8px}
h1{font-size:1.85rem;line-height:1.2;margin:0 0 .3rem;letter-spacing:-.01em}
h2{font-size:1.3rem;margin:2.2rem 0 .8rem;padding-bottom:.3rem;border-bottom:1px solid var(--border)}
h3{font-size:1.08rem;margin:0 0 .2rem;display:flex;align-items:center;gap:.5rem;flex-wrap:wrap}
p{margin:.4rem 0}
.sub,.meta,.note,figcaption{color:var(--muted)}
.sub{font-size:1.02rem;margin:0}
.note{font-size:.88rem}
a{color:var(--accent)}
nav.toc ul{list-style:none;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;padding:0;margin:.6rem 0 0;font-size:.92rem}
.warning{border:1px solid var(--warn-border);border-left-width:5px;background:var(--warn-bg);border-radius:6px;padding:.7rem 1rem;margin:1rem 0}
.warning strong{display:block;margin-bottom:.15rem}
.warning ul{margin:.2rem 0 0;padding-left:1.2rem}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin:0;padding:0}
.stat{background:var(--card);border:1px solid var(--border);border-radius:8px;padding:10px 14px}
.stat dt{color:var(--muted);font-size:.82rem;text-transform:uppercase;letter-spacing:.04em}
.stat dd{margin:0;font-size:1.55rem;font-weight:600;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.stat dd.text{font-size:1.05rem;font-weight:500}
.stat .hint{display:block;font-size:.8rem;font-weight:400;color:var(--muted)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:.3rem 0}
caption{caption-side:bottom;text-align:left;color:var(--muted);font-size:.85rem;padding-top:.5rem}
th,td{padding:6px 12px;border-bottom:1px solid var(--border);text-align:left;vertical-align:middle}
thead th{border-bottom:2px solid var(--fg);font-weight:600}
.num{text-align:right}
tr.best td,td.best{font-weight:700}
tfoot td,tfoot th{border-top:2px solid var(--border);border-bottom:0;font-weight:600}
.scroll{overflow-x:auto}
table.confusion td.cell{text-align:center;min-width:3.4em;border:2px solid #fff}
table.confusion td.cell.zero{color:#9aa4ae}
table.confusion td.cell.match{outline:3px solid var(--fg);outline-offset:-4px;font-weight:700}
table.confusion thead th{text-align:center}
.swatch{display:inline-block;width:.95em;height:.95em;border-radius:50%;border:1px solid rgba(0,0,0,.3);flex:none;vertical-align:-.12em;margin-right:.3em}
.pill{display:inline-block;font-size:.8rem;font-weight:500;padding:.05rem .55rem;border-radius:999px;background:#ddf4ff;color:#0a3069;border:1px solid #b6e3ff}
.pill.warn{background:#fff8c5;color:#6c4a00;border-color:#d4a72c}
figure{margin:0}
figure.chart{background:#fff;border:1px solid var(--border);border-radius:8px;padding:10px 12px;margin:.4rem 0}
figure.chart>svg{display:block;width:100%;height:auto}
figure.chart.small{max-width:560px}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1.1rem;padding:0;margin:.5rem 0 0;font-size:.88rem}
.legend li{display:flex;align-items:center;gap:.3rem}
.legend .title{font-weight:600;color:var(--fg)}
.legend svg{display:inline-block;width:14px;height:14px;flex:none}
section.cluster{border:1px solid var(--border);border-radius:10px;padding:14px 16px 16px;margin:0 0 16px}
section.cluster .meta{margin:.1rem 0 .7rem;font-size:.9rem}
ul.crops{list-style:none;display:grid;grid-template-columns:repeat(auto-fill,minmax(112px,1fr));gap:10px;padding:0;margin:0}
ul.crops figure{background:var(--card);border:1px solid var(--border);border-radius:6px;padding:5px;text-align:center;height:100%}
ul.crops img{display:block;width:100px;height:100px;margin:0 auto;object-fit:contain;background:#e6eaef;border-radius:3px}
ul.crops figcaption{font-size:.78rem;line-height:1.3;margin-top:4px;overflow-wrap:anywhere}
ul.crops .lab{color:var(--fg);font-weight:500}
ul.crops .mismatch figure{border-color:var(--bad);box-shadow:inset 0 0 0 1px var(--bad)}
ul.crops .mismatch .lab{color:var(--bad)}
.bar{display:inline-block;height:.7em;background:var(--accent);border-radius:2px;vertical-align:middle;min-width:1px}
.track{display:inline-block;width:140px;background:#eaeef2;border-radius:2px;line-height:0;vertical-align:middle;margin-right:.5rem}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
footer{margin-top:2.5rem;border-top:1px solid var(--border);padding-top:.8rem;font-size:.82rem;color:var(--muted)}
@media (max-width:600px){main{padding:16px}}
@media print{
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 body{font-size:10.5pt}
 main{max-width:none;padding:0}
 nav.toc,.skip{display:none}
 h2{break-after:avoid}
 figure,tr,section.cluster,.warning,.stat{break-inside:avoid}
 a{color:inherit;text-decoration:none}
}
`;

function renderWarnings(data: ReportData): string {
  const parts: string[] = [];
  if (data.randomBackbone)
    parts.push(
      `<div class="warning" role="note" id="warn-random-backbone"><strong>⚠ Randomly initialised backbone</strong>` +
        `No pretrained weights were loaded: the embeddings come from a random ViT, so clusters reflect low-level image statistics ` +
        `rather than learned features. Treat the clusters and metrics below as a smoke test, not as results.</div>`,
    );
  if (data.warnings && data.warnings.length > 0)
    parts.push(
      `<div class="warning" role="note"><strong>⚠ Warnings</strong><ul>${data.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`,
    );
  return parts.join('\n');
}

function renderSummary(ctx: Ctx): string {
  const s = ctx.data.summary;
  const kHint = s.kChosenBy === 'fixed' ? 'fixed by the user' : 'estimated from the data';
  const cards: string[] = [
    `<div class="stat"><dt>Images</dt><dd>${fmtInt(s.images)}</dd></div>`,
    `<div class="stat"><dt>Anomaly crops</dt><dd>${fmtInt(s.crops)}</dd></div>`,
    `<div class="stat"><dt>Clusters (K)</dt><dd>${fmtInt(s.k)}<span class="hint">${esc(kHint)}${s.kDetail ? ` — ${esc(s.kDetail)}` : ''}</span></dd></div>`,
  ];
  if (ctx.data.clusters.length !== s.k)
    cards.push(`<div class="stat"><dt>Non-empty clusters</dt><dd>${fmtInt(ctx.data.clusters.length)}</dd></div>`);
  for (const f of s.extra ?? [])
    cards.push(`<div class="stat"><dt>${esc(f.label)}</dt><dd class="text">${esc(typeof f.value === 'number' ? fmtNumber(f.value) : f.value)}</dd></div>`);
  return section('summary', 'Summary', `<dl class="stats">${cards.join('')}</dl>`);
}

function renderMetrics(rows: readonly ReportMetrics[]): string {
  const keys = ['nmi', 'ari', 'f1'] as const;
  const best = keys.map((k) => Math.max(...rows.map((r) => (Number.isFinite(r[k]) ? r[k] : -Infinity))));
  const body = rows
    .map(
      (r) =>
        `<tr><th scope="row">${esc(r.method)}</th>${keys
          .map((k, i) => `<td class="num${rows.length > 1 && r[k] === best[i] ? ' best' : ''}">${fmtScore(r[k])}</td>`)
          .join('')}</tr>`,
    )
    .join('');
  return section(
    'metrics',
    'Clustering quality',
    `<div class="scroll"><table class="metrics"><thead><tr><th scope="col">Method</th><th scope="col" class="num">NMI</th><th scope="col" class="num">ARI</th><th scope="col" class="num">F1</th></tr></thead><tbody>${body}</tbody>` +
      `<caption>Against the true labels; higher is better (bold: best). F1 is the accuracy after the optimal (Hungarian) one-to-one matching of clusters to labels.</caption></table></div>`,
  );
}

function renderCluster(ctx: Ctx, c: ReportCluster, composition: Map<number, { label: ClassLabel; count: number }[]>): string {
  const matched = ctx.matchOf.get(c.id);
  const id = `cluster-${c.id}`;
  const heading =
    `${swatch(ctx.colorOf(c.id))}<span>${esc(ctx.clusterName(c.id))}</span>` +
    (matched !== undefined && matched !== null ? `<span class="pill" title="Hungarian match">matched: ${esc(matched)}</span>` : '') +
    (matched === null ? '<span class="pill warn">unmatched</span>' : '');
  const comp = composition.get(c.id);
  let compText = '';
  if (comp && comp.length) {
    const total = comp.reduce((s, x) => s + x.count, 0);
    const top = [...comp].sort((a, b) => b.count - a.count || compareLabels(a.label, b.label)).filter((x) => x.count > 0).slice(0, 4);
    compText = ` · true labels: ${top.map((x) => `${esc(x.label)} ${esc(fmtNumber(x.count))}`).join(', ')}${total > 0 && top.length < comp.filter((x) => x.count > 0).length ? ', …' : ''}`;
  }
  const shown = c.samples.slice(0, ctx.maxSamples);
  const items = shown
    .map((s, i) => {
      const mismatch = s.label !== undefined && matched !== undefined && matched !== null && s.label !== matched;
      const alt = `Crop ${i + 1} of ${ctx.clusterName(c.id)}${s.label !== undefined ? `, true label ${s.label}` : ''}${s.caption ? `, ${s.caption}` : ''}`;
      const cap = [
        s.label !== undefined ? `<span class="lab">${mismatch ? '✗ ' : ''}${esc(s.label)}</span>${mismatch ? '<span class="vh"> (differs from the matched label)</span>' : ''}` : '',
        s.caption ? `<span>${esc(s.caption)}</span>` : '',
      ].filter(Boolean).join('<br>');
      return `<li${mismatch ? ' class="mismatch"' : ''}><figure><img src="${s.src}" alt="${esc(alt)}" width="100" height="100" loading="eager">${cap ? `<figcaption>${cap}</figcaption>` : ''}</figure></li>`;
    })
    .join('');
  const more =
    c.samples.length > shown.length || c.regions > shown.length
      ? `<p class="note">Showing ${shown.length} of ${fmtInt(Math.max(c.regions, c.samples.length))} crops.</p>`
      : '';
  const gallery = shown.length ? `<ul class="crops">${items}</ul>${more}` : '<p class="note">No sample crops.</p>';
  return (
    `<section class="cluster" id="${esc(id)}" aria-labelledby="${esc(id)}-h">` +
    `<h3 id="${esc(id)}-h">${heading}</h3>` +
    `<p class="meta">${fmtInt(c.images)} image${c.images === 1 ? '' : 's'} · ${fmtInt(c.regions)} region${c.regions === 1 ? '' : 's'}${compText}</p>` +
    `${gallery}</section>`
  );
}

function renderTimings(timings: readonly StageTiming[]): string {
  const total = timings.reduce((s, t) => s + t.ms, 0);
  const max = Math.max(0, ...timings.map((t) => t.ms));
  const rows = timings
    .map((t) => {
      const share = total > 0 ? (100 * t.ms) / total : 0;
      const w = max > 0 ? (100 * t.ms) / max : 0;
      return `<tr><th scope="row">${esc(t.stage)}</th><td class="num">${msFormat.format(t.ms)}</td><td><span class="track" aria-hidden="true"><span class="bar" style="width:${num(w)}%"></span></span>${share.toFixed(1)}%</td></tr>`;
    })
    .join('');
  return section(
    'timings',
    'Timings',
    `<div class="scroll"><table class="timings"><thead><tr><th scope="col">Stage</th><th scope="col" class="num">Time (ms)</th><th scope="col">Share</th></tr></thead><tbody>${rows}</tbody>` +
      `<tfoot><tr><th scope="row">Total</th><td class="num">${msFormat.format(total)}</td><td>100%</td></tr></tfoot><caption>Wall time per pipeline stage.</caption></table></div>`,
  );
}

/**
 * Renders the report as one self-contained HTML5 document (UTF-8). The output
 * depends only on `data` and `options`.
 * @throws {@link InvalidArgumentError} when `data` is malformed (the message names the field).
 */

/** The whole document for `data` already checked by `validateReportData`. */
export function renderPage(data: ReportData, maxSamples: number): string {
  // Stable colours: rank of the id among every cluster id mentioned anywhere.
  const allIds = new Set<number>(data.clusters.map((c) => c.id));
  for (const p of data.embedding?.points ?? []) allIds.add(p.cluster);
  for (const c of data.confusion?.clusters ?? []) allIds.add(c);
  const ranked = [...allIds].filter((c) => c >= 0).sort((a, b) => a - b);
  const rank = new Map(ranked.map((c, i) => [c, i]));
  const names = new Map(data.clusters.map((c) => [c.id, c.name]));
  const matchOf = new Map<number, ClassLabel | null>();
  for (const m of data.confusion?.mapping ?? []) matchOf.set(m.cluster, m.label);
  const labelSet = new Set<ClassLabel>(data.confusion?.labels ?? []);
  for (const p of data.embedding?.points ?? []) if (p.label !== undefined) labelSet.add(p.label);
  const ctx: Ctx = {
    data,
    maxSamples,
    colorOf: (c) => (c < 0 ? UNASSIGNED : clusterColor(rank.get(c) ?? 0)),
    clusterName: (c) => {
      const name = names.get(c);
      return c < 0 ? `Unassigned${name ? ` (${name})` : ''}` : `Cluster ${c}${name ? ` — ${name}` : ''}`;
    },
    matchOf,
    labelOrder: [...labelSet].sort(compareLabels),
  };
  const composition = new Map<number, { label: ClassLabel; count: number }[]>();
  if (data.confusion)
    data.confusion.clusters.forEach((c, r) =>
      composition.set(c, data.confusion!.labels.map((label, j) => ({ label, count: data.confusion!.counts[r]![j]! }))),
    );

  const sections: { id: string; title: string; html: string }[] = [];
  sections.push({ id: 'summary', title: 'Summary', html: renderSummary(ctx) });
  if (data.metrics && data.metrics.length) sections.push({ id: 'metrics', title: 'Quality', html: renderMetrics(data.metrics) });
  if (data.confusion) sections.push({ id: 'confusion', title: 'Clusters vs. labels', html: renderConfusion(ctx, data.confusion) });
  if (data.embedding) sections.push({ id: 'embedding', title: 'Embedding', html: renderEmbedding(ctx, data.embedding) });
  if (data.kCurve && data.kCurve.curve.length) sections.push({ id: 'k-estimation', title: 'Choice of K', html: renderKCurve(ctx, data.kCurve) });
  sections.push({
    id: 'clusters',
    title: 'Clusters',
    html: section(
      'clusters',
      `Discovered clusters (${data.clusters.length})`,
      data.clusters.length ? data.clusters.map((c) => renderCluster(ctx, c, composition)).join('\n') : '<p class="note">No clusters.</p>',
    ),
  });
  if (data.timings && data.timings.length) sections.push({ id: 'timings', title: 'Timings', html: renderTimings(data.timings) });

  const generated =
    data.generatedAt === undefined ? '' : data.generatedAt instanceof Date ? data.generatedAt.toISOString() : data.generatedAt;
  const csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${esc(csp)}">
<meta name="generator" content="anomalyncd">
<title>${esc(data.title)}</title>
<style>${CSS}</style>
</head>
<body>
<a class="skip" href="#content">Skip to content</a>
<main id="content">
<header class="page">
<h1>${esc(data.title)}</h1>
${data.subtitle ? `<p class="sub">${esc(data.subtitle)}</p>` : ''}
${generated ? `<p class="note">Generated ${esc(generated)}</p>` : ''}
<nav class="toc" aria-label="Sections"><ul>${sections.map((s) => `<li><a href="#${esc(s.id)}">${esc(s.title)}</a></li>`).join('')}</ul></nav>
</header>
${renderWarnings(data)}
${sections.map((s) => s.html).join('\n')}
<footer>AnomalyNCD novel anomaly-class discovery report, produced by anomalyncd${data.builtWith ? ` (${esc(data.builtWith)})` : ''}. Self-contained: it loads nothing from the network.</footer>
</main>
</body>
</html>
`;
}
