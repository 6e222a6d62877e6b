/**
 * The mask-guided DINO ViT (MGViT, SPEC §4): checkpoint loading, the exact
 * test-time preprocessing, and embeddings on worker threads.
 * @module
 */
import { InvalidArgumentError } from '../core/errors.js';
import { checkInt, runJob, threadCount, type JobOptions } from '../core/jobs.js';
import { modelAddon } from '../native/loader.js';
import { isTensorLike, Tensor } from '../core/tensor.js';
import type { RawBackbone, RawVitConfig } from '../native/addon-types.js';

/** Architecture of the ViT (SPEC §4.1–4.2). */
export interface VitConfig {
  patchSize: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  /** The last `maskLayers` blocks restrict the [CLS] query to anomalous patches. */
  maskLayers: number;
  mlpRatio: number;
  qkvBias: boolean;
  lnEps: number;
  /** The checkpoint's image size (its position-embedding grid); other inputs are interpolated. */
  imageSize: number;
  /** Attention implementation: the fused CPU routine or plain libtorch ops (default fused on CPU). */
  attention: 'fused' | 'plain';
}

/** The DINO presets. */
export const ARCH_PRESETS = ['dino_vits16', 'dino_vits8', 'dino_vitb16', 'dino_vitb8'] as const;
/** A preset name. */
export type ArchPreset = (typeof ARCH_PRESETS)[number];
/** A preset name, a partial config (optionally with `preset` as its base), or that config as JSON text. */
export type ArchSpec = ArchPreset | (Partial<VitConfig> & { preset?: ArchPreset }) | string;

const CONFIG_KEYS: readonly (keyof VitConfig)[] = ['patchSize', 'embedDim', 'depth', 'numHeads', 'maskLayers', 'mlpRatio', 'qkvBias', 'lnEps', 'imageSize', 'attention'];

/** Resolves an {@link ArchSpec} into the raw form the addon takes. @internal */
export function rawArch(arch: ArchSpec | undefined): RawVitConfig {
  if (arch === undefined) return { preset: 'dino_vitb8' };
  if (typeof arch === 'string') {
    if ((ARCH_PRESETS as readonly string[]).includes(arch)) return { preset: arch };
    if (arch.trim().startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(arch);
      } catch (e) {
        throw new InvalidArgumentError(`arch is not valid JSON: ${(e as Error).message}`);
      }
      return rawArch(parsed as ArchSpec);
    }
    throw new InvalidArgumentError(`arch '${arch}' is neither a preset (${ARCH_PRESETS.join(', ')}) nor a JSON object`);
  }
  if (typeof arch !== 'object' || arch === null) throw new InvalidArgumentError('arch must be a preset name or a config object');
  for (const key of Object.keys(arch))
    if (key !== 'preset' && !(CONFIG_KEYS as readonly string[]).includes(key))
      throw new InvalidArgumentError(`arch has an unknown key '${key}' (known: preset, ${CONFIG_KEYS.join(', ')})`);
  if (arch.preset !== undefined && !(ARCH_PRESETS as readonly string[]).includes(arch.preset))
    throw new InvalidArgumentError(`arch.preset '${String(arch.preset)}' is not one of ${ARCH_PRESETS.join(', ')}`);
  return { ...arch };
}

/** Options of {@link loadBackbone}. */
export interface LoadBackboneOptions extends Omit<JobOptions, 'threads'> {
  /** Architecture (default `dino_vitb8`); the checkpoint's image size is inferred from `pos_embed`. */
  arch?: ArchSpec;
  /** A torch device name (default `cpu`; `cuda:0` with a CUDA build of libtorch). */
  device?: string;
  /** Seed of the random initialisation when no checkpoint is given (default 0). */
  seed?: number;
}

/** Options of {@link Backbone.embed}. */
export interface EmbedOptions extends JobOptions {
  /** Images per forward pass (default 8: on CPUs, larger batches mostly add page faults on big temporaries). */
  batchSize?: number;
}

/** A loaded mask-guided ViT. */
export class Backbone {
  readonly #native: RawBackbone;
  /** @internal */
  constructor(native: RawBackbone) {
    this.#native = native;
  }

  /** The architecture, with the image size inferred from the checkpoint. */
  get config(): VitConfig {
    return this.#native.config as VitConfig;
  }

  /** True after {@link dispose}. */
  get disposed(): boolean {
    return this.#native.disposed;
  }

  /**
   * The final-normed [CLS] token of each image. `images`: float32 [B, 3, H, W]
   * (ImageNet-normalised, see {@link preprocess}); `masks`: float32 [B, 1, H, W]
   * in [0, 1], or omitted for an unguided DINO forward.
   */
  async embed(images: Tensor, masks?: Tensor, options: EmbedOptions = {}): Promise<Tensor<'float32'>> {
    if (this.#native.disposed) throw new InvalidArgumentError('This backbone has been disposed');
    checkFloat4d(images, 'images', 3);
    if (masks !== undefined) checkFloat4d(masks, 'masks', 1);
    const raw = { threads: threadCount(options.threads), batchSize: checkInt('batchSize', options.batchSize, 1, 65536) ?? 8 };
    const result = await runJob((onProgress) => this.#native.embed(images, masks ?? null, raw, onProgress), options);
    return new Tensor('float32', result.shape, new Float32Array(result.data));
  }

  /** Frees the weights now (running calls finish first); later calls throw. */
  dispose(): void {
    this.#native.dispose();
  }
}

function checkFloat4d(t: unknown, name: string, channels: number): void {
  if (!isTensorLike(t) || t.dtype !== 'float32' || t.shape.length !== 4 || t.shape[1] !== channels)
    throw new InvalidArgumentError(`${name} must be a float32 Tensor [B, ${channels}, H, W]`);
}

/**
 * Loads a DINO ViT: a DINO release file (a `torch.save` state dict, read by a
 * restricted unpickler: no code runs) or a `.safetensors` file, or with
 * `path = null` a randomly initialised network of `arch`.
 */
export async function loadBackbone(path: string | null, options: LoadBackboneOptions = {}): Promise<Backbone> {
  if (path !== null && (typeof path !== 'string' || path.length === 0)) throw new InvalidArgumentError('loadBackbone(path): path must be a file path or null');
  const raw = { arch: rawArch(options.arch), device: options.device ?? 'cpu', seed: checkInt('seed', options.seed, 0, 2 ** 31 - 1) ?? 0 };
  const native = modelAddon();
  if (!native.loadBackbone) throw new InvalidArgumentError('This build of anomalyncd has no model support');
  const handle = await runJob((onProgress) => native.loadBackbone!(path, raw, onProgress), options);
  return new Backbone(handle);
}

/** Output of {@link preprocess}: network inputs for {@link Backbone.embed}. */
export interface Preprocessed {
  /** float32 [B, 3, 224, 224], ImageNet-normalised. */
  images: Tensor<'float32'>;
  /** float32 [B, 1, 224, 224] in [0, 1]. */
  masks: Tensor<'float32'>;
}

/**
 * The exact test-time transform (SPEC §5.1, T17, T18): Pillow-bilinear
 * short-side-256 resize of crop and mask, fixed crop at (16, 16) of 224×224,
 * ImageNet normalisation. `crops`: uint8 [h, w, 3]; `masks`: uint8 [h, w]
 * (0/255), or null for "all anomalous".
 */
export async function preprocess(crops: readonly Tensor[], masks: readonly (Tensor | null)[], options: JobOptions = {}): Promise<Preprocessed> {
  if (!Array.isArray(crops) || crops.length === 0) throw new InvalidArgumentError('preprocess() needs a non-empty array of crops');
  if (!Array.isArray(masks) || masks.length !== crops.length) throw new InvalidArgumentError('preprocess() needs one mask (or null) per crop');
  const native = modelAddon();
  if (!native.preprocess) throw new InvalidArgumentError('This build of anomalyncd has no model support');
  const result = await runJob((onProgress) => native.preprocess!(crops, masks, { threads: threadCount(options.threads) }, onProgress), options);
  return {
    images: new Tensor('float32', [result.count, 3, 224, 224], new Float32Array(result.images)),
    masks: new Tensor('float32', [result.count, 1, 224, 224], new Float32Array(result.masks)),
  };
}
