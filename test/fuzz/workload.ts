// Small inputs and a tiny trained model for the concurrency test (test/58), the
// soak (bench/soak.ts) and the event-loop lag bench (bench/concurrency.bench.ts).
import * as lib from '../../ts/index.js';
import { Tensor } from '../../ts/index.js';
import { mulberry32 } from '../../ts/core/random.js';

export const TINY_ARCH = { patchSize: 8, embedDim: 16, depth: 2, numHeads: 2, maskLayers: 1, imageSize: 32 };

export interface Workload {
  maps: Tensor<'float32'>[];
  images: Tensor<'uint8'>[];
  crops: { image: Tensor<'uint8'>; mask: Tensor<'uint8'> }[];
  backbone: lib.Backbone;
  model: lib.TrainedModel;
  dispose(): void;
}

/** Maps with one or two blobs, RGB images, crops, a random-init tiny backbone and a 1-epoch tiny model. */
export async function makeWorkload(seed = 1, side = 48): Promise<Workload> {
  const rng = mulberry32(seed);
  const maps: Tensor<'float32'>[] = [];
  const images: Tensor<'uint8'>[] = [];
  for (let m = 0; m < 8; m++) {
    const cx = side * (0.2 + 0.6 * rng()), cy = side * (0.2 + 0.6 * rng()), r = side * (0.08 + 0.1 * rng());
    maps.push(
      new Tensor('float32', [side, side], Float32Array.from({ length: side * side }, (_, i) => {
        const x = i % side, y = Math.floor(i / side);
        return Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)) + 0.05 * rng();
      })),
    );
    images.push(new Tensor('uint8', [side, side, 3], Uint8Array.from({ length: side * side * 3 }, () => Math.floor(rng() * 256))));
  }
  const crops = Array.from({ length: 8 }, () => ({
    image: new Tensor('uint8', [24, 24, 3], Uint8Array.from({ length: 24 * 24 * 3 }, () => Math.floor(rng() * 256))),
    mask: new Tensor('uint8', [24, 24], Uint8Array.from({ length: 24 * 24 }, () => (rng() < 0.3 ? 255 : 0))),
  }));
  const backbone = await lib.loadBackbone(null, { arch: TINY_ARCH, seed });
  const model = await lib.fit({ unlabelled: crops }, { k: 2, arch: TINY_ARCH, epochs: 1, batchSize: 4, threads: 1, seed, nHead: 1, projHidden: 16, projOut: 8 });
  return {
    maps,
    images,
    crops,
    backbone,
    model,
    dispose() {
      backbone.dispose();
      model.dispose();
    },
  };
}

export type JobKind = 'binarize' | 'extractRegions' | 'embed' | 'predict';
export const JOB_KINDS: JobKind[] = ['binarize', 'extractRegions', 'embed', 'predict'];

/** Runs one job of `kind` on item `i` of the workload; returns a canonical string of its result. */
export async function runJobOf(w: Workload, kind: JobKind, i: number, signal?: AbortSignal): Promise<string> {
  const n = w.maps.length;
  const opts = { threads: 1, ...(signal ? { signal } : {}) };
  switch (kind) {
    case 'binarize': {
      const r = await lib.binarize([w.maps[i % n]!, w.maps[(i + 1) % n]!], opts);
      return JSON.stringify([r.searchRange, r.maps.map((m) => [m.threshold, m.count, m.foreground])]);
    }
    case 'extractRegions': {
      const r = await lib.extractRegions([w.images[i % n]!], [w.maps[i % n]!], { ...opts, range: [0, 255] });
      return JSON.stringify(r.items.map((it) => [it.threshold, it.boxes, it.crops.map((c) => [c.score, c.maskArea])]));
    }
    case 'embed': {
      const f = await w.backbone.embedCrops([w.crops[i % w.crops.length]!, w.crops[(i + 3) % w.crops.length]!], opts);
      return JSON.stringify(Array.from(f.data));
    }
    case 'predict': {
      const p = await w.model.predict([w.crops[i % w.crops.length]!], opts);
      return JSON.stringify(p.probabilities);
    }
  }
}
