/**
 * The mask-guided DINO ViT (MGViT, METHOD.md §4): checkpoint loading, the exact
 * test-time preprocessing, and embeddings on worker threads.
 * @module
 */
import { InvalidArgumentError, shown } from '../core/errors.js';
import { runJob, type JobOptions } from '../core/jobs.js';
import { bool, deviceField, int, num, oneOf, optionsObject, precisionField, resolveOptions, threadsField, type DeviceRequest, type Precision, type SchemaFor } from '../core/options.js';
import { modelAddon } from '../native/loader.js';
import { isTensorLike, Tensor } from '../core/tensor.js';
import type { RawBackbone, RawVitConfig } from '../native/addon-types.js';

/** Architecture of the ViT (METHOD.md §4.1–4.2); defaults and bounds are in its one table. */
export interface VitConfig {
  /** Patch side in pixels (default 16). */
  patchSize: number;
  /** Token width (default 384). */
  embedDim: number;
  /** Number of transformer blocks (default 12). */
  depth: number;
  /** Attention heads; must divide embedDim (default 6). */
  numHeads: number;
  /** The last maskLayers blocks restrict the [CLS] query to anomalous patches (default 9). */
  maskLayers: number;
  /** MLP hidden width / embedDim (default 4). */
  mlpRatio: number;
  /** Bias in the qkv projection (default true). */
  qkvBias: boolean;
  /** LayerNorm epsilon (default 1e-6). */
  lnEps: number;
  /** The checkpoint's image size (its position-embedding grid; default 224); other inputs are interpolated. */
  imageSize: number;
  /** Attention implementation: the fused CPU routine or plain libtorch ops (default 'fused'). */
  attention: 'fused' | 'plain';
}

/**
 * The ViT architecture (METHOD.md §4.1–4.2): one table. The defaults are DINO's ViT-S/16,
 * the base of a partial config without `preset`.
 */
const VIT_FIELDS = {
  patchSize: int({ min: 1, max: 4096, default: 16, doc: 'Patch side in pixels.' }),
  embedDim: int({ min: 1, max: 65536, default: 384, doc: 'Token width.' }),
  depth: int({ min: 0, max: 4096, default: 12, doc: 'Number of transformer blocks.' }),
  numHeads: int({ min: 1, max: 65536, default: 6, doc: 'Attention heads (must divide embedDim).' }),
  maskLayers: int({ min: 0, max: 4096, default: 9, doc: 'The last maskLayers blocks restrict the [CLS] query to anomalous patches.' }),
  mlpRatio: num({ min: 0, max: 1024, gt: true, default: 4, doc: 'MLP hidden width / embedDim.' }),
  qkvBias: bool({ default: true, doc: 'Bias in the qkv projection.' }),
  lnEps: num({ min: 0, max: 1, gt: true, default: 1e-6, doc: 'LayerNorm epsilon.' }),
  imageSize: int({ min: 1, max: 65536, default: 224, doc: "The checkpoint's image size (its position-embedding grid); other inputs are interpolated." }),
  attention: oneOf(['fused', 'plain'] as const, { default: 'fused', doc: 'Attention implementation: the fused CPU routine or plain libtorch ops.' }),
} satisfies SchemaFor<VitConfig>;




/** The DINO presets. */
export const ARCH_PRESETS = ['dino_vits16', 'dino_vits8', 'dino_vitb16', 'dino_vitb8'] as const;
/** A preset name. */
export type ArchPreset = (typeof ARCH_PRESETS)[number];
/** A preset name, a partial config (optionally with `preset` as its base), or that config as JSON text. */
export type ArchSpec = ArchPreset | (Partial<VitConfig> & { preset?: ArchPreset }) | string;

const CONFIG_KEYS = Object.keys(VIT_FIELDS) as readonly (keyof VitConfig)[];

let presetTable: Record<string, RawVitConfig> | undefined;
/** The preset values, defined once in C++ (cpp/model/vit.cc presetConfig). */
function presetValues(name: ArchPreset): RawVitConfig {
  const native = modelAddon();
  if (!native.presets) throw new InvalidArgumentError('This build of anomalyncd has no model support');
  presetTable ??= native.presets();
  return presetTable[name]!;
}

/**
 * Resolves an {@link ArchSpec} into a complete, validated architecture (every field
 * filled: from the preset, else the table's defaults). Cross-field rules (numHeads
 * divides embedDim, maskLayers <= depth, ...) are checked natively. @internal
 */
export function resolveArch(arch: ArchSpec): VitConfig {
  if (typeof arch === 'string') {
    if ((ARCH_PRESETS as readonly string[]).includes(arch)) return resolveOptions(VIT_FIELDS, presetValues(arch as ArchPreset), 'arch.');
    if (arch.trim().startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(arch);
      } catch (e) {
        throw new InvalidArgumentError(`arch is not valid JSON: ${(e as Error).message}`);
      }
      return resolveArch(parsed as ArchSpec);
    }
    throw new InvalidArgumentError(`arch '${arch}' is neither a preset (${ARCH_PRESETS.join(', ')}) nor a JSON object`);
  }
  if (typeof arch !== 'object' || arch === null || Array.isArray(arch)) throw new InvalidArgumentError('arch must be a preset name or a config object');
  const given: Record<string, unknown> = { ...arch }; // each property read once
  for (const key of Object.keys(given))
    if (key !== 'preset' && !(CONFIG_KEYS as readonly string[]).includes(key))
      throw new InvalidArgumentError(`arch has an unknown key '${key}' (known: preset, ${CONFIG_KEYS.join(', ')})`);
  const { preset, ...fields } = given;
  if (preset !== undefined && !(ARCH_PRESETS as readonly string[]).includes(preset as string))
    throw new InvalidArgumentError(`arch.preset '${shown(preset)}' is not one of ${ARCH_PRESETS.join(', ')}`);
  for (const [key, value] of Object.entries(fields)) if (value === undefined) delete fields[key];
  const base = preset !== undefined ? presetValues(preset as ArchPreset) : {};
  return resolveOptions(VIT_FIELDS, { ...base, ...fields }, 'arch.');
}

/** {@link resolveArch} under its former name (training options use it). @internal */
export const rawArch: (arch: ArchSpec) => RawVitConfig = resolveArch;

const LOAD_FIELDS = {
  device: deviceField,
  precision: precisionField,
  seed: int({ min: 0, max: 2 ** 31 - 1, default: 0, doc: 'Seed of the random initialisation (also drawn before checkpoint weights are copied in).' }),
};

const EMBED_FIELDS = {
  threads: threadsField,
  precision: oneOf(['fp32', 'bf16'] as const, { doc: "ViT precision of this call (default: the backbone's)." }),
  batchSize: int({ min: 1, max: 65536, default: 8, doc: 'Images per forward pass (on CPUs, larger batches mostly add page faults on big temporaries).' }),
};

const PREPROCESS_FIELDS = { threads: threadsField };

/** Options of {@link loadBackbone}. */
export interface LoadBackboneOptions extends Omit<JobOptions, 'threads'> {
  /**
   * Architecture. Default: read from the checkpoint (DINO's ViT-S and ViT-B widths;
   * another width needs `arch`), `dino_vitb8` without a checkpoint. The checkpoint's
   * image size always comes from its `pos_embed`.
   */
  arch?: ArchSpec;
  /**
   * Where the weights live and every `embed` runs (default `'auto'`: the GPU when the
   * build's libtorch has CUDA and a device is present, else the CPU). An unmet CUDA
   * request rejects with a `DeviceError` naming what is missing.
   */
  device?: DeviceRequest;
  /**
   * The default precision of `embed`/`embedCrops` (default `'fp32'`). `'bf16'`: bfloat16
   * autocast around the ViT (weights stay float32); embeddings within ~2e-2 of fp32.
   */
  precision?: Precision;
  /** Seed of the random initialisation when no checkpoint is given (default 0). */
  seed?: number;
}

/** Options of {@link Backbone.embed} and {@link Backbone.embedCrops}. */
export interface EmbedOptions extends JobOptions {
  /** Images per forward pass (default 8: on CPUs, larger batches mostly add page faults on big temporaries). */
  batchSize?: number;
  /** Precision of this call (default: the backbone's, see {@link LoadBackboneOptions.precision}). */
  precision?: Precision;
}

/** Where a backbone's weights and architecture came from. */
export interface BackboneInfo {
  /** The checkpoint file, or null for a random initialisation. */
  path: string | null;
  /** SHA-256 of the checkpoint file (null without one). */
  sha256: string | null;
  /** `given`: the `arch` option; `checkpoint`: read from the file; `default`: `dino_vitb8` (no file, no arch). */
  archSource: 'given' | 'checkpoint' | 'default';
  /** What the loader decided (architecture read, checkpoint keys ignored, a slow bf16 CPU). */
  notes: string[];
  /** Where the weights live and `embed` runs: `'cpu'` or `'cuda:N'`. */
  device: string;
  /** The default precision of `embed`. */
  precision: Precision;
}

/** A crop for {@link Backbone.embedCrops}. */
export interface EmbedCrop {
  /** uint8 [h, w, 3] RGB. */
  image: Tensor;
  /** uint8 [h, w], 0/255 (anomalous where 255); null: all anomalous. */
  mask: Tensor | null;
}

const natives = new WeakMap<Backbone, RawBackbone>();

/** A loaded mask-guided ViT. */
export class Backbone {
  readonly #native: RawBackbone;
  /** @internal */
  constructor(native: RawBackbone) {
    this.#native = native;
    natives.set(this, native);
  }

  /** The architecture, with the image size inferred from the checkpoint. */
  get config(): VitConfig {
    return this.#native.config;
  }

  /** Where the weights and the architecture came from. */
  get info(): BackboneInfo {
    return this.#native.info;
  }

  /** Where the weights live and `embed` runs: `'cpu'` or `'cuda:N'`. */
  get device(): string {
    return this.#native.info.device;
  }

  /** The default precision of `embed`/`embedCrops`. */
  get precision(): Precision {
    return this.#native.info.precision;
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
    optionsObject(options, 'embed(images, masks, options)');
    if (this.#native.disposed) throw new InvalidArgumentError('This backbone has been disposed');
    checkFloat4d(images, 'images', 3);
    if (masks !== undefined) checkFloat4d(masks, 'masks', 1);
    const o = resolveOptions(EMBED_FIELDS, options);
    const raw = { ...o, precision: o.precision ?? this.precision };
    const result = await runJob((onProgress) => this.#native.embed(images, masks ?? null, raw, onProgress), options);
    return new Tensor('float32', result.shape, new Float32Array(result.data));
  }

  /**
   * Features of crops: the exact test-time transform (as {@link preprocess}) and the
   * mask-guided forward run natively, batch by batch, and only the features
   * [n, embedDim] come back. The same bits as `embed` over `preprocess` of the crops.
   */
  async embedCrops(crops: readonly EmbedCrop[], options: EmbedOptions = {}): Promise<Tensor<'float32'>> {
    optionsObject(options, 'embedCrops(crops, options)');
    if (this.#native.disposed) throw new InvalidArgumentError('This backbone has been disposed');
    if (!Array.isArray(crops) || crops.length === 0) throw new InvalidArgumentError('embedCrops() needs a non-empty array of {image, mask}');
    const list = crops.map((c: EmbedCrop, i) => {
      if (typeof c !== 'object' || c === null) throw new InvalidArgumentError(`crops[${i}] must be {image, mask}`);
      return { image: c.image, mask: c.mask ?? null };
    });
    const o = resolveOptions(EMBED_FIELDS, options);
    const raw = { ...o, precision: o.precision ?? this.precision };
    const result = await runJob((onProgress) => this.#native.embedCrops(list, raw, onProgress), options);
    return new Tensor('float32', result.shape, new Float32Array(result.data));
  }

  /** Frees the weights now (running calls finish first); later calls throw. */
  dispose(): void {
    this.#native.dispose();
  }
}

/** The native handle of a Backbone (fit takes the loaded weights through it). @internal */
export function rawBackbone(backbone: Backbone): RawBackbone {
  const native = natives.get(backbone);
  if (!native) throw new InvalidArgumentError("Option 'backbone' must be a Backbone from loadBackbone(), a checkpoint path or null");
  return native;
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
  optionsObject(options, 'loadBackbone(path, options)');
  const { arch, ...rest } = options;
  const raw = { arch: arch === undefined ? null : resolveArch(arch), ...resolveOptions(LOAD_FIELDS, rest) };
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
 * The exact test-time transform (METHOD.md §5.1, T17, T18): Pillow-bilinear
 * short-side-256 resize of crop and mask, fixed crop at (16, 16) of 224×224,
 * ImageNet normalisation. `crops`: uint8 [h, w, 3]; `masks`: uint8 [h, w]
 * (0/255), or null for "all anomalous".
 */
export async function preprocess(crops: readonly Tensor[], masks: readonly (Tensor | null)[], options: JobOptions = {}): Promise<Preprocessed> {
  if (!Array.isArray(crops) || crops.length === 0) throw new InvalidArgumentError('preprocess() needs a non-empty array of crops');
  if (!Array.isArray(masks) || masks.length !== crops.length) throw new InvalidArgumentError('preprocess() needs one mask (or null) per crop');
  const native = modelAddon();
  if (!native.preprocess) throw new InvalidArgumentError('This build of anomalyncd has no model support');
  const raw = resolveOptions(PREPROCESS_FIELDS, options);
  const result = await runJob((onProgress) => native.preprocess!(crops, masks, raw, onProgress), options);
  return {
    images: new Tensor('float32', [result.count, 3, 224, 224], new Float32Array(result.images)),
    masks: new Tensor('float32', [result.count, 1, 224, 224], new Float32Array(result.masks)),
  };
}
