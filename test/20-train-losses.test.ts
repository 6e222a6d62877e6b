// METHOD.md §5.4 / 5.5 / 6 / T21-T25: each loss term, the schedules and the optimiser,
// against plain-JS hand computations and the Debian torch 1.13 oracle (the reference's
// code paths written literally: GCD's info_nce_logits / SupConLoss, SimGCD's
// DistillLoss with AnomalyNCD's teacher masking + PLC, memax as log(p^-p)).
import test from 'ava';
import { Tensor } from 'anomalyncd';
import { resolveArch } from '../ts/stages/model.js';
import { nativeTrainConfig, trainKernels } from '../ts/stages/train.js';
import { prng, python } from './helpers.js';

const K = () => trainKernels();

// ---------------------------------------------------------------------------
// plain-JS reference of every term (float64)
// ---------------------------------------------------------------------------
type M = number[][];
const rows = (t: Float64Array, r: number, c: number): M => Array.from({ length: r }, (_, i) => Array.from(t.subarray(i * c, (i + 1) * c)));
const norm = (m: M): M => m.map((r) => { const n = Math.max(Math.hypot(...r), 1e-12); return r.map((v) => v / n); });
const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
const lse = (v: number[]) => { const m = Math.max(...v); return m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0)); };
const softmax = (v: number[]) => { const l = lse(v); return v.map((x) => Math.exp(x - l)); };
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

function jsInfoNce(z: M, T: number): number {
  const n2 = z.length, n = n2 / 2, f = norm(z);
  return mean(f.map((fi, i) => {
    const s = f.map((fj) => dot(fi, fj) / T);
    const others = s.filter((_, j) => j !== i);
    return lse(others) - s[(i + n) % n2]!;
  }));
}

function jsSupCon(z: M, labels: number[], T: number, baseT: number): number {
  const n2 = z.length, f = norm(z);
  const lab = [...labels, ...labels];
  return mean(f.map((fi, i) => {
    const s = f.map((fj) => dot(fi, fj) / T);
    const others = s.filter((_, j) => j !== i);
    const l = lse(others);
    const pos = s.map((v, j) => (j !== i && lab[j] === lab[i] ? v - l : NaN)).filter((v) => !Number.isNaN(v));
    void n2;
    return -(T / baseT) * mean(pos);
  }));
}

function jsCE(logits: M, labels: number[], st: number): number {
  const lab = [...labels, ...labels];
  return mean(logits.map((r, i) => -Math.log(softmax(r.map((v) => v / st))[lab[i]!]!)));
}

function jsTeacher(logits: M, tt: number, numKnown: number, plc?: number[]): M {
  const n = logits.length / 2;
  return logits.map((r, i) => {
    let q = softmax(r.map((v) => v / tt));
    if (numKnown > 0) {
      q = q.map((v, c) => (c < numKnown ? 0 : v));
      const s = q.reduce((a, b) => a + b, 0);
      q = q.map((v) => v / s);
    }
    if (plc) {
      const w = plc[i % n]!;
      q = q.map((v, c) => w * (c === numKnown ? 1 : 0) + (1 - w) * v);
    }
    return q;
  });
}

function jsDistill(logits: M, st: number, tt: number, numKnown: number, plc?: number[]): number {
  const n = logits.length / 2;
  const q = jsTeacher(logits, tt, numKnown, plc);
  const logp = logits.map((r) => { const s = r.map((v) => v / st); const l = lse(s); return s.map((v) => v - l); });
  const term = (qa: M, pb: M) => mean(qa.map((qr, i) => -dot(qr, pb[i]!)));
  return (term(q.slice(0, n), logp.slice(n)) + term(q.slice(n), logp.slice(0, n))) / 2;
}

function jsMemax(logits: M, st: number): number {
  const p = logits.map((r) => softmax(r.map((v) => v / st)));
  const C = logits[0]!.length;
  const pbar = Array.from({ length: C }, (_, c) => mean(p.map((r) => r[c]!)));
  return pbar.reduce((s, v) => s + v * Math.log(v), 0) + Math.log(C);
}

// ---------------------------------------------------------------------------
// a tiny batch: B = 6 samples (3 labelled, 3 unlabelled), P = 5, C = 5 (C_l = 2), H = 2
// ---------------------------------------------------------------------------
const B = 6, P = 5, C = 5, H = 2, CL = 2;
const labels = [1, -1, 0, -1, 1, -1];
const plcW = [0, 0.3, 0, 0, 0, 0.45];
function batch(seed: number) {
  const r = prng(seed);
  const z = Float64Array.from({ length: 2 * B * P }, () => r() * 2 - 1);
  const logits = Float64Array.from({ length: H * 2 * B * C }, () => r() * 2 - 1);
  return { z, logits };
}
const sel = (rowsM: M, idx: number[]) => [...idx.map((i) => rowsM[i]!), ...idx.map((i) => rowsM[i + B]!)];

function jsAll(z: Float64Array, logits: Float64Array, tt: number) {
  const zm = rows(z, 2 * B, P);
  const L = labels.map((l, i) => (l >= 0 ? i : -1)).filter((i) => i >= 0);
  const U = labels.map((l, i) => (l < 0 ? i : -1)).filter((i) => i >= 0);
  const labL = L.map((i) => labels[i]!);
  const plcU = U.map((i) => plcW[i]!);
  const heads = Array.from({ length: H }, (_, h) => rows(logits.subarray(h * 2 * B * C, (h + 1) * 2 * B * C), 2 * B, C));
  const ce = heads.map((lm) => jsCE(sel(lm, L), labL, 0.1));
  const distill = heads.map((lm) => jsDistill(sel(lm, U), 0.1, tt, CL, plcU));
  const memax = heads.map((lm) => jsMemax(sel(lm, U), 0.1));
  const cluster = distill.map((d, h) => d + 4 * memax[h]!);
  const infoNce = jsInfoNce(zm, 1.0);
  const supCon = jsSupCon(sel(zm, L), labL, 0.07, 0.07);
  const total = 0.7 * mean(cluster) + 0.3 * mean(ce) + 0.7 * infoNce + 0.3 * supCon;
  return { total, infoNce, supCon, ce, distill, memax, cluster };
}

function native(z: Float64Array, logits: Float64Array, tt: number, withPlc = true) {
  return K().losses(
    {
      z: new Tensor('float64', [2 * B, P], z),
      logits: new Tensor('float64', [H, 2 * B, C], logits),
      labels: new Tensor('int32', [B], Int32Array.from(labels)),
      ...(withPlc ? { plc: new Tensor('float64', [B], Float64Array.from(plcW)) } : {}),
    },
    { numKnown: CL, teacherTemp: tt },
  );
}

const close = (a: number, b: number, tol = 1e-10) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

test('every loss term equals a plain-JS hand computation (float64)', (t) => {
  for (const [seed, tt] of [[1, 0.07], [2, 0.04], [3, 0.0566667]] as const) {
    const { z, logits } = batch(seed);
    const n = native(z, logits, tt);
    const j = jsAll(z, logits, tt);
    for (const key of ['total', 'infoNce', 'supCon'] as const) t.true(close(n[key], j[key]), `${key}: ${n[key]} vs ${j[key]}`);
    for (const key of ['ce', 'distill', 'memax', 'cluster'] as const)
      for (let h = 0; h < H; h++) t.true(close(n[key][h]!, j[key][h]!), `${key}[${h}]: ${n[key][h]} vs ${j[key][h]}`);
  }
});

test('teacher targets: known classes masked (= softmax over novel logits), PLC blends toward the first novel slot', (t) => {
  const logits = Float64Array.from([0.9, -0.2, 0.1, 0.5, -0.7, 0.3, 0.8, -0.4, 0.0, 0.2, 0.6, -0.1]); // [2, 6]... as [2n=2, C=6]
  const q = K().teacherTargets(new Tensor('float64', [2, 6], logits), 0.07, 2, new Tensor('float64', [1], Float64Array.from([0.25])));
  const qs = rows(q.data as Float64Array, 2, 6);
  for (let i = 0; i < 2; i++) {
    const r = Array.from(logits.subarray(i * 6, i * 6 + 6));
    const novel = softmax(r.slice(2).map((v) => v / 0.07));
    const want = [0, 0, ...novel].map((v, c) => 0.25 * (c === 2 ? 1 : 0) + 0.75 * v);
    qs[i]!.forEach((v, c) => t.true(close(v, want[c]!, 1e-12), `row ${i} class ${c}: ${v} vs ${want[c]}`));
    t.true(close(qs[i]!.reduce((a, b) => a + b, 0), 1, 1e-12));
  }
  // no PLC, no known classes: plain softmax
  const q0 = K().teacherTargets(new Tensor('float64', [2, 6], logits), 0.1, 0);
  t.true(close((q0.data as Float64Array)[0]!, softmax(Array.from(logits.subarray(0, 6)).map((v) => v / 0.1))[0]!, 1e-12));
});

test('without labelled rows the labelled terms are 0; without PLC weights the teacher is unblended', (t) => {
  const { z, logits } = batch(9);
  const r = K().losses(
    { z: new Tensor('float64', [2 * B, P], z), logits: new Tensor('float64', [H, 2 * B, C], logits), labels: new Tensor('int32', [B], new Int32Array(B).fill(-1)) },
    { numKnown: 0, teacherTemp: 0.07 },
  );
  t.is(r.supCon, 0);
  t.deepEqual(r.ce, [0, 0]);
  const zm = rows(z, 2 * B, P);
  const heads = Array.from({ length: H }, (_, h) => rows(logits.subarray(h * 2 * B * C, (h + 1) * 2 * B * C), 2 * B, C));
  const cl = heads.map((lm) => jsDistill(lm, 0.1, 0.07, 0) + 4 * jsMemax(lm, 0.1));
  t.true(close(r.total, 0.7 * mean(cl) + 0.7 * jsInfoNce(zm, 1.0)));
  const noPlc = native(z, logits, 0.07, false);
  const withPlc = native(z, logits, 0.07, true);
  t.not(noPlc.distill[0], withPlc.distill[0]);
  t.is(noPlc.memax[0], withPlc.memax[0]);
});

test('terms, total and gradients match the reference code run in torch 1.13 (float32 and float64)', (t) => {
  const { z, logits } = batch(5);
  const tt = 0.0633333;
  const oracle = JSON.parse(
    python(
      `import json, math, sys, torch
import torch.nn.functional as F
d = json.loads(sys.argv[1])
B, P, C, H, CL = d['B'], d['P'], d['C'], d['H'], d['CL']
out = {}
for dt, name in ((torch.float64, 'f64'), (torch.float32, 'f32')):
    z = torch.tensor(d['z'], dtype=dt).view(2 * B, P).requires_grad_(True)
    logits = torch.tensor(d['logits'], dtype=dt).view(H, 2 * B, C).requires_grad_(True)
    labels = torch.tensor(d['labels'])
    plc = torch.tensor(d['plc'], dtype=dt)
    mask_lab = labels >= 0
    # GCD info_nce_logits
    def info_nce_logits(features, n_views=2, temperature=1.0):
        b_ = 0.5 * int(features.size(0))
        lab = torch.cat([torch.arange(b_) for i in range(n_views)], dim=0)
        lab = (lab.unsqueeze(0) == lab.unsqueeze(1)).float()
        features = F.normalize(features, dim=1)
        sim = torch.matmul(features, features.T)
        mask = torch.eye(lab.shape[0], dtype=torch.bool)
        lab = lab[~mask].view(lab.shape[0], -1)
        sim = sim[~mask].view(sim.shape[0], -1)
        positives = sim[lab.bool()].view(lab.shape[0], -1)
        negatives = sim[~lab.bool()].view(sim.shape[0], -1)
        lg = torch.cat([positives, negatives], dim=1)
        return lg / temperature, torch.zeros(lg.shape[0], dtype=torch.long)
    # GCD SupConLoss
    def supcon(features, labels, temperature=0.07, base_temperature=0.07):
        batch_size = features.shape[0]
        labels = labels.contiguous().view(-1, 1)
        mask = torch.eq(labels, labels.T).to(features.dtype)
        contrast_count = features.shape[1]
        contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
        anchor_feature = contrast_feature
        anchor_count = contrast_count
        adc = torch.div(torch.matmul(anchor_feature, contrast_feature.T), temperature)
        logits_max, _ = torch.max(adc, dim=1, keepdim=True)
        lg = adc - logits_max.detach()
        mask = mask.repeat(anchor_count, contrast_count)
        logits_mask = torch.scatter(torch.ones_like(mask), 1, torch.arange(batch_size * anchor_count).view(-1, 1), 0)
        mask = mask * logits_mask
        exp_logits = torch.exp(lg) * logits_mask
        log_prob = lg - torch.log(exp_logits.sum(1, keepdim=True))
        mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
        loss = -(temperature / base_temperature) * mean_log_prob_pos
        return loss.view(anchor_count, batch_size).mean()
    # SimGCD DistillLoss + AnomalyNCD teacher masking and PLC
    def distill(student_output, teacher_output, temp, w):
        student_out = (student_output / 0.1).chunk(2)
        teacher_out = F.softmax(teacher_output / temp, dim=-1)
        teacher_out[:, :CL] = 0
        teacher_out = teacher_out / teacher_out.sum(dim=-1, keepdim=True)
        onehot = torch.zeros_like(teacher_out); onehot[:, CL] = 1
        ww = torch.cat([w, w]).unsqueeze(1)
        teacher_out = ww * onehot + (1 - ww) * teacher_out
        teacher_out = teacher_out.detach().chunk(2)
        total, n = 0, 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq: continue
                total += torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1).mean(); n += 1
        return total / n
    proj = F.normalize(z, dim=-1)
    contrastive_logits, contrastive_labels = info_nce_logits(z)
    info = torch.nn.CrossEntropyLoss()(contrastive_logits, contrastive_labels)
    sup_con_feats = torch.cat([f[mask_lab].unsqueeze(1) for f in proj.chunk(2)], dim=1)
    sc = supcon(sup_con_feats, labels[mask_lab])
    ce, di, me, cl = [], [], [], []
    for h in range(H):
        student_out = logits[h]
        sup_logits = torch.cat([f[mask_lab] for f in (student_out / 0.1).chunk(2)], dim=0)
        sup_labels = torch.cat([labels[mask_lab] for _ in range(2)], dim=0)
        ce.append(torch.nn.CrossEntropyLoss()(sup_logits, sup_labels))
        u = torch.cat([f[~mask_lab] for f in student_out.chunk(2)], dim=0)
        di.append(distill(u, u.detach(), d['tt'], plc[~mask_lab]))
        avg_probs = (u / 0.1).softmax(dim=1).mean(dim=0)
        me.append(-torch.sum(torch.log(avg_probs ** (-avg_probs))) + math.log(float(len(avg_probs))))
        cl.append(di[-1] + 4 * me[-1])
    total = 0.7 * (sum(cl) / H) + 0.3 * (sum(ce) / H) + 0.7 * info + 0.3 * sc
    total.backward()
    out[name] = dict(total=total.item(), infoNce=info.item(), supCon=sc.item(), ce=[x.item() for x in ce], distill=[x.item() for x in di],
                     memax=[x.item() for x in me], cluster=[x.item() for x in cl], gradZ=z.grad.reshape(-1).tolist(), gradLogits=logits.grad.reshape(-1).tolist())
print(json.dumps(out))`,
      [JSON.stringify({ B, P, C, H, CL, z: Array.from(z), logits: Array.from(logits), labels, plc: plcW, tt })],
    ),
  ) as Record<'f64' | 'f32', { total: number; infoNce: number; supCon: number; ce: number[]; distill: number[]; memax: number[]; cluster: number[]; gradZ: number[]; gradLogits: number[] }>;
  for (const dtype of ['float64', 'float32'] as const) {
    const o = oracle[dtype === 'float64' ? 'f64' : 'f32'];
    const tol = dtype === 'float64' ? 1e-10 : 2e-5;
    const zt = dtype === 'float64' ? new Tensor('float64', [2 * B, P], z) : new Tensor('float32', [2 * B, P], Float32Array.from(z));
    const lt = dtype === 'float64' ? new Tensor('float64', [H, 2 * B, C], logits) : new Tensor('float32', [H, 2 * B, C], Float32Array.from(logits));
    const plc = dtype === 'float64' ? new Tensor('float64', [B], Float64Array.from(plcW)) : new Tensor('float32', [B], Float32Array.from(plcW));
    const n = K().losses({ z: zt, logits: lt, labels: new Tensor('int32', [B], Int32Array.from(labels)), plc }, { numKnown: CL, teacherTemp: tt });
    for (const key of ['total', 'infoNce', 'supCon'] as const) t.true(close(n[key], o[key], tol), `${dtype} ${key}: ${n[key]} vs ${o[key]}`);
    for (const key of ['ce', 'distill', 'memax', 'cluster'] as const)
      for (let h = 0; h < H; h++) t.true(close(n[key][h]!, o[key][h]!, tol), `${dtype} ${key}[${h}]: ${n[key][h]} vs ${o[key][h]}`);
    const gz = Array.from(n.gradZ.data), gl = Array.from(n.gradLogits.data);
    t.is(gz.length, o.gradZ.length);
    t.is(gl.length, o.gradLogits.length);
    const gtol = dtype === 'float64' ? 1e-9 : 1e-4;
    t.true(gz.every((v, i) => Math.abs(v - o.gradZ[i]!) <= gtol * Math.max(1, Math.abs(o.gradZ[i]!))), `${dtype} grad z`);
    t.true(gl.every((v, i) => Math.abs(v - o.gradLogits[i]!) <= gtol * Math.max(1, Math.abs(o.gradLogits[i]!))), `${dtype} grad logits`);
  }
});

test('memax is computed literally as log(pbar^-pbar) in float32 (T23)', (t) => {
  // A confident batch: some pbar entries are tiny, where log(p^-p) and -p log p differ in float32.
  const logits = new Float32Array(2 * 4 * 6);
  for (let r = 0; r < 8; r++) logits[r * 6 + (r % 2)] = 1; // cosines: one class at 1, the rest 0
  const z = Float32Array.from({ length: 8 * 3 }, (_, i) => Math.sin(i + 1));
  const n = K().losses(
    { z: new Tensor('float32', [8, 3], z), logits: new Tensor('float32', [1, 8, 6], logits), labels: new Tensor('int32', [4], new Int32Array(4).fill(-1)) },
    { numKnown: 0, teacherTemp: 0.07 },
  );
  const o = JSON.parse(
    python(`import torch, math, json
lg = torch.zeros(8, 6)
for r in range(8): lg[r, r % 2] = 1
p = (lg / 0.1).softmax(dim=1).mean(dim=0)
print(json.dumps((-torch.sum(torch.log(p ** (-p))) + math.log(6.0)).item()))`),
  ) as number;
  t.is(n.memax[0], o);
});

test('METHOD.md §5.4 teacher-temperature table (and numpy linspace/repeat, general forms)', (t) => {
  const temps = K().teacherTemperatures(50);
  const table: [number, number, number][] = [
    [0, 3, 0.07], [4, 7, 0.066667], [8, 11, 0.063333], [12, 15, 0.06], [16, 19, 0.056667],
    [20, 23, 0.053333], [24, 27, 0.05], [28, 31, 0.046667], [32, 35, 0.043333], [36, 49, 0.04],
  ];
  for (const [a, b, v] of table) for (let e = a; e <= b; e++) t.is(Number(temps[e]!.toFixed(6)), v, `epoch ${e}`);
  const np = JSON.parse(
    python(`import numpy as np, json
a = np.concatenate((np.repeat(np.linspace(0.07, 0.04, 40 // 4), 4), np.ones(50 - 40) * 0.04))
b = np.concatenate((np.repeat(np.linspace(0.1, 0.02, 12 // 3), 3), np.ones(20 - 12) * 0.02))
print(json.dumps([a.tolist(), b.tolist()]))`),
  ) as [number[], number[]];
  t.deepEqual(temps, np[0]);
  t.deepEqual(K().teacherTemperatures(20, { warmupTemp: 0.1, finalTemp: 0.02, warmupEpochs: 12, repeatTimes: 3 }), np[1]);
  // shorter runs cut the ramp; a ramp of one value holds the warm-up value
  t.deepEqual(K().teacherTemperatures(3), [0.07, 0.07, 0.07]);
  t.deepEqual(K().teacherTemperatures(5, { warmupEpochs: 2, repeatTimes: 2 }), [0.07, 0.07, 0.04, 0.04, 0.04]);
  t.throws(() => K().teacherTemperatures(5, { repeatTimes: 0 }), { message: /repeatTimes/ });
});

test('cosine LR per epoch equals torch CosineAnnealingLR(T_max = epochs, eta_min = lr * 1e-3)', (t) => {
  const lrs = K().cosineLr(50, 0.003);
  t.is(lrs[0], 0.003);
  lrs.forEach((v, e) => t.true(close(v, 3e-6 + (0.003 - 3e-6) * (1 + Math.cos((Math.PI * e) / 50)) / 2, 1e-15)));
  const torchLrs = JSON.parse(
    python(`import torch, json
p = torch.nn.Parameter(torch.zeros(1))
opt = torch.optim.SGD([p], lr=0.003, momentum=0.9)
s = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=50, eta_min=0.003 * 1e-3)
out = []
for e in range(50):
    out.append(opt.param_groups[0]['lr']); opt.step(); s.step()
print(json.dumps(out))`),
  ) as number[];
  lrs.forEach((v, e) => t.true(close(v, torchLrs[e]!, 1e-12), `epoch ${e}: ${v} vs ${torchLrs[e]}`));
});

test('SGD: momentum 0.9, weight decay only on >= 2-D params, bit-equal to torch.optim.SGD with two groups', (t) => {
  const r = prng(11);
  const shapes = [[3, 4], [4], [2, 3, 2], [5]];
  const steps = 4;
  const lrs = [0.003, 0.0029, 0.0027, 0.0024];
  const params = shapes.map((s, i) => {
    const n = s.reduce((a, b) => a * b, 1);
    return {
      name: `p${i}`,
      value: new Tensor('float64', s, Float64Array.from({ length: n }, () => r() - 0.5)),
      grads: Array.from({ length: steps }, () => new Tensor('float64', s, Float64Array.from({ length: n }, () => r() - 0.5))),
    };
  });
  const mine = K().sgd(params, { lrs, momentum: 0.9, weightDecay: 0.05 });
  t.deepEqual(mine.map((p) => p.decay), [true, false, true, false]);
  const theirs = JSON.parse(
    python(
      `import torch, json, sys
d = json.loads(sys.argv[1])
ps = [torch.nn.Parameter(torch.tensor(p['value'], dtype=torch.float64).view(p['shape'])) for p in d['params']]
decay = [p for p in ps if p.dim() >= 2]; nodecay = [p for p in ps if p.dim() < 2]
opt = torch.optim.SGD([{'params': decay}, {'params': nodecay, 'weight_decay': 0.}], lr=0.1, momentum=0.9, weight_decay=0.05)
for s, lr in enumerate(d['lrs']):
    for g in opt.param_groups: g['lr'] = lr
    opt.zero_grad()
    for p, src in zip(ps, d['params']): p.grad = torch.tensor(src['grads'][s], dtype=torch.float64).view(src['shape'])
    opt.step()
print(json.dumps([p.detach().reshape(-1).tolist() for p in ps]))`,
      [JSON.stringify({ lrs, params: params.map((p) => ({ shape: p.value.shape, value: Array.from(p.value.data), grads: p.grads.map((g) => Array.from(g.data)) })) })],
    ),
  ) as number[][];
  mine.forEach((p, i) => t.deepEqual(Array.from(p.value.data), theirs[i], `param ${i}`));
});

test('trainable parameters: backbone blocks >= gradFromBlock, projector, heads; decay on >= 2-D only; frozen excluded', (t) => {
  const list = K().trainableParameters(
    resolveArch({ patchSize: 16, embedDim: 32, depth: 4, numHeads: 4, maskLayers: 2 }),
    nativeTrainConfig({ k: 3, gradFromBlock: 3, nHead: 2, projHidden: 16, projOut: 8 }, ['a', 'b', 'n0', 'n1', 'n2']),
  );
  const names = list.map((p) => p.name).sort();
  t.deepEqual(names, [
    'backbone.blocks.3.attn.proj.bias', 'backbone.blocks.3.attn.proj.weight', 'backbone.blocks.3.attn.qkv.bias', 'backbone.blocks.3.attn.qkv.weight',
    'backbone.blocks.3.mlp.fc1.bias', 'backbone.blocks.3.mlp.fc1.weight', 'backbone.blocks.3.mlp.fc2.bias', 'backbone.blocks.3.mlp.fc2.weight',
    'backbone.blocks.3.norm1.bias', 'backbone.blocks.3.norm1.weight', 'backbone.blocks.3.norm2.bias', 'backbone.blocks.3.norm2.weight',
    'heads.0.weight', 'heads.1.weight',
    'projector.fc1.bias', 'projector.fc1.weight', 'projector.fc2.bias', 'projector.fc2.weight', 'projector.fc3.bias', 'projector.fc3.weight',
  ]);
  for (const p of list) t.is(p.decay, p.shape.length >= 2, p.name);
  t.deepEqual(list.find((p) => p.name === 'heads.1.weight')!.shape, [5, 32]);
});
