/**
 * Anomaly-centred cropping (docs/METHOD.md §2.6, §3): MEBin, then square boxes
 * around the main anomalous regions, crops, masks and per-crop anomaly scores.
 * @module
 */
import { InvalidArgumentError } from '../core/errors.js';
import { runJob, type JobOptions } from '../core/jobs.js';
import { bool, defaulted, deviceField, int, num, optionsObject, rejectUnknownOptions, resolveOptions, str, threadsField, type AllKeysKnown, type DeviceRequest, type Schema, type SchemaFor } from '../core/options.js';
import { MEBIN_FIELDS, rawMap, type MapInput, type MebinOptions } from './mebin.js';
import { coreAddon } from '../native/loader.js';
import { isTensorLike, Tensor } from '../core/tensor.js';
import type { RawRegionsInput, RawRegionsOptions, RawTensor } from '../native/addon-types.js';

/**
 * An image: a path to an image file (decoded with OpenCV as the reference
 * does; grayscale files become three equal channels), or a uint8 Tensor
 * [H, W, 3] (RGB), [H, W, 1] or [H, W].
 */
export type ImageInput = string | Tensor;

/** `[left, top, right, bottom]`, right/bottom exclusive; may hold .5 values and reach outside the image. */
export type Box = [number, number, number, number];

/** Cropping parameters (the reference's hard-coded defaults). */
export interface CropOptions {
  /** Box half-side = trunc(max(w, h) * (1 + padding) * 0.5) (default 0.1). */
  padding?: number;
  /** Boxes closer than trunc(S * maxMergeDist) merge, S = longer image side (default 0.01). */
  maxMergeDist?: number;
  /** Minimum box half-side as a fraction of S (default 0.1). */
  minCropSize?: number;
}

/** One anomaly-centred crop. */
export interface RegionCrop {
  box: Box;
  /** Number of 255 pixels of the crop's mask (at native crop size). */
  maskArea: number;
  /** Max of the bicubic-resized, range-normalised map inside the box / 255 (may exceed 1; NaN with a degenerate range). */
  score: number;
  /** The crop, RGB uint8 [h, w, 3] (unless `returnPixels: false`). */
  image?: Tensor<'uint8'>;
  /** The crop's mask, 0/255 uint8 [h, w]. */
  mask?: Tensor<'uint8'>;
  /** With `cropDir`: the crop's PNG, relative to `cropDir`. */
  imageFile?: string;
  /** With `cropDir`: the mask's PNG, relative to `cropDir`. */
  maskFile?: string;
  /** With `descriptors: true`: the crop's region descriptor (`DESCRIPTOR_NAMES`; computed in C++). */
  descriptor?: Float64Array;
}

/** Regions of one (image, map) pair. */
export interface RegionItem {
  /** MEBin's raw threshold for this map. */
  threshold: number;
  /** MEBin's estimated anomaly count (`est`); at most `count + 1` boxes are kept. */
  count: number;
  sequence: number[];
  foreground: number;
  /** Image size `[height, width]`. */
  imageSize: [number, number];
  /** Kept boxes, largest first; `boxes[i]` belongs to `crops[i]`. */
  boxes: Box[];
  crops: RegionCrop[];
}

/** Result of {@link extractRegions}. */
export interface RegionsResult {
  searchRange: [number, number];
  /** Where MEBin ran: `'cpu'` or `'cuda:N'` (crops are cut on the CPU). */
  device: string;
  items: RegionItem[];
  timings: {
    /** Mean MEBin compute time per map (decoding excluded). */
    mebinMsPerMap: number;
    /** Mean cropping compute time per image (decoding and file writing excluded). */
    cropMsPerImage: number;
    /** With `descriptors`: mean compute time of the image's crop descriptors (0 without). */
    descriptorMsPerImage: number;
  };
  warnings: string[];
}

/**
 * Masks as maps: binary (e.g. ground-truth or hand-drawn) masks used directly as the
 * binary maps, instead of going through MEBin.
 */
export interface MaskMapOptions {
  /**
   * Binarise each map at `maskLevel` (foreground = value >= maskLevel) and use it as the
   * binary map as it is (default false): no MEBin search range, no threshold sweep and no
   * erosion (the reference's treatment of the ground-truth masks of D^l, METHOD.md §1.6;
   * the 6x6 erosion would delete thin defects). `count` (est) is the map's number of
   * 8-connected regions, so every region gets a box (METHOD.md §3.3), and cropping is
   * unchanged (METHOD.md §2.6, §3; an all-foreground map falls back to the whole image
   * with an empty mask, as there). Crop scores come from the binarised map (1 in a
   * region, 0 for an empty map's whole-image crop); `searchRange` is reported as [0, 255].
   */
  masksAsMaps?: boolean;
  /** Foreground level for `masksAsMaps`: value >= maskLevel (1..255, default 128). */
  maskLevel?: number;
}

/** The {@link MaskMapOptions} table. @internal */
export const MASK_MAP_FIELDS = {
  masksAsMaps: defaulted(bool({ default: false, doc: 'Use each map, binarised at maskLevel, as the binary map (no MEBin).' })),
  maskLevel: defaulted(int({ min: 1, max: 255, default: 128, doc: 'Foreground = value >= maskLevel (masksAsMaps).' })),
} as const satisfies SchemaFor<MaskMapOptions>;

/** Options of {@link extractRegions}. */
export interface ExtractRegionsOptions extends MebinOptions, MaskMapOptions, CropOptions, JobOptions {
  /** Return crop pixels as Tensors (default true). */
  returnPixels?: boolean;
  /** Also write every crop and mask as PNG under `cropDir/images` and `cropDir/masks`. */
  cropDir?: string;
  /** File stems for written crops, one per image (default: the item index). */
  names?: readonly string[];
  /** MEBin's device (default `'auto'`): `'cpu' | 'cuda' | 'cuda:N' | 'auto'`; crops stay on the CPU. */
  device?: DeviceRequest;
  /**
   * Also compute each crop's region descriptor (`crop.descriptor`; default false): the 17
   * shape and appearance measurements of `regionDescriptor` (analysis/descriptors), computed in
   * C++ on the worker threads while the crop is at hand.
   */
  descriptors?: boolean;
}

/**
 * The cropping options' one table (bounds and defaults of {@link CropOptions});
 * the C++ side reads the same fields through `visitFields` next to
 * `crop::Options`. @internal
 */
export const CROP_FIELDS = {
  padding: defaulted(num({ min: 0, max: 100, default: 0.1, doc: 'Box half-side = trunc(max(w, h) * (1 + padding) * 0.5).' })),
  maxMergeDist: defaulted(num({ min: 0, max: 1, default: 0.01, doc: 'Boxes closer than trunc(S * maxMergeDist) merge.' })),
  minCropSize: defaulted(num({ min: 0, max: 0.5, default: 0.1, doc: 'Minimum box half-side as a fraction of S.' })),
} as const satisfies SchemaFor<CropOptions>;

const REGIONS_FIELDS = {
  ...MEBIN_FIELDS,
  ...CROP_FIELDS,
  ...MASK_MAP_FIELDS,
  threads: defaulted(threadsField),
  returnPixels: defaulted(bool({ default: true })),
  descriptors: defaulted(bool({ default: false })),
  cropDir: str(),
  device: deviceField,
} as const satisfies Schema;

/** The {@link ExtractRegionsOptions} outside the field table (checked where used). */
const REGIONS_OTHER_KEYS = ['names', 'signal', 'onProgress'] as const satisfies readonly (keyof ExtractRegionsOptions)[];
// Every ExtractRegionsOptions key is known to the unknown-option check (compile-time).
const everyRegionsKeyKnown: AllKeysKnown<ExtractRegionsOptions, keyof typeof REGIONS_FIELDS | (typeof REGIONS_OTHER_KEYS)[number]> = true;
void everyRegionsKeyKnown;

function rawImage(value: unknown, label: string): string | RawTensor {
  if (typeof value === 'string') {
    if (value.length === 0) throw new InvalidArgumentError(`${label} is an empty path`);
    return value;
  }
  if (!isTensorLike(value) || value.dtype !== 'uint8')
    throw new InvalidArgumentError(`${label} must be a file path or a uint8 Tensor [H, W, 3]`);
  const s = value.shape;
  if (!(s.length === 2 || (s.length === 3 && (s[2] === 1 || s[2] === 3))))
    throw new InvalidArgumentError(`${label} must have shape [H, W, 3], [H, W, 1] or [H, W] (got [${s.join(', ')}])`);
  return value;
}

/**
 * Binarises the maps with one search range over the whole set, then cuts
 * anomaly-centred crops from each image, on worker threads.
 */
export async function extractRegions(
  images: readonly ImageInput[],
  maps: readonly MapInput[],
  options: ExtractRegionsOptions = {},
): Promise<RegionsResult> {
  if (!Array.isArray(images) || !Array.isArray(maps)) throw new InvalidArgumentError('extractRegions(images, maps) needs two arrays');
  if (images.length === 0) throw new InvalidArgumentError('extractRegions() needs at least one image');
  if (images.length !== maps.length)
    throw new InvalidArgumentError(`extractRegions(): ${images.length} images cannot be paired with ${maps.length} maps`);
  const given: unknown = optionsObject(options, 'extractRegions(images, maps, options)').names;
  const names: unknown[] | undefined = Array.isArray(given) ? [...(given as unknown[])] : undefined;
  if (given !== undefined && (!names || names.length !== images.length || !names.every((n) => typeof n === 'string' && /^[^/\\]+$/.test(n))))
    throw new InvalidArgumentError("Option 'names' must hold one file stem (no '/') per image");
  rejectUnknownOptions('extractRegions()', options, [...Object.keys(REGIONS_FIELDS), ...REGIONS_OTHER_KEYS]);
  const o = resolveOptions(REGIONS_FIELDS, options);
  const raw: RawRegionsOptions = {
    sampleRate: o.sampleRate,
    minIntervalLen: o.minIntervalLen,
    erode: o.erode,
    padding: o.padding,
    maxMergeDist: o.maxMergeDist,
    minCropSize: o.minCropSize,
    range: o.range ?? null,
    threads: o.threads,
    returnPixels: o.returnPixels,
    writeDir: o.cropDir ?? '',
    masksAsMaps: o.masksAsMaps,
    maskLevel: o.maskLevel,
    descriptors: o.descriptors,
    device: o.device,
  };
  const inputs: RawRegionsInput[] = images.map((image, i) => ({
    image: rawImage(image, `images[${i}]`),
    map: rawMap(maps[i], `maps[${i}]`),
    name: names ? (names[i] as string) : String(i),
  }));
  const native = coreAddon();
  const result = await runJob((onProgress) => native.extractRegions(inputs, raw, onProgress), options);
  return {
    searchRange: result.searchRange,
    device: result.device,
    items: result.items.map((item) => ({
      threshold: item.threshold,
      count: item.count,
      sequence: item.sequence,
      foreground: item.foreground,
      imageSize: [item.imageHeight, item.imageWidth],
      boxes: item.crops.map((c) => c.box),
      crops: item.crops.map((c) => {
        const crop: RegionCrop = { box: c.box, maskArea: c.maskArea, score: c.score };
        if (c.image) crop.image = new Tensor('uint8', [c.height, c.width, c.channels], new Uint8Array(c.image));
        if (c.mask) crop.mask = new Tensor('uint8', [c.height, c.width], new Uint8Array(c.mask));
        if (c.imageFile !== undefined) crop.imageFile = c.imageFile;
        if (c.maskFile !== undefined) crop.maskFile = c.maskFile;
        if (c.descriptor !== undefined) crop.descriptor = c.descriptor;
        return crop;
      }),
    })),
    timings: { mebinMsPerMap: result.msPerMap, cropMsPerImage: result.msPerImage, descriptorMsPerImage: result.descriptorMsPerImage },
    warnings: [...result.warnings, ...fallbackWarning(result.items, result.searchRange, o.masksAsMaps, o.range !== undefined)],
  };
}

/**
 * A warning when MEBin found no region in most maps (each crop then the whole image): the
 * usual cause is a search range computed without defect-free maps, whose small maxima set
 * its lower end (METHOD.md §2.1), so only the strongest pixels of each map are swept.
 */
function fallbackWarning(items: readonly { crops: readonly { maskArea: number }[] }[], range: [number, number], masksAsMaps: boolean, rangeGiven: boolean): string[] {
  if (masksAsMaps || items.length < 4) return [];
  const fellBack = items.filter((it) => it.crops.every((c) => c.maskArea === 0)).length;
  if (fellBack * 2 <= items.length) return [];
  return [
    `MEBin found no anomaly region in ${fellBack} of ${items.length} maps (search range [${range[0]}, ${range[1]}]${rangeGiven ? ', given' : ''}): ` +
      'their crops are whole images. The range starts at the smallest per-map maximum; without defect-free maps among ' +
      "these it is high. Give the range of the whole category, good images' maps included (option 'range', " +
      '`anomalyncd mebin --range`), or check the maps.',
  ];
}
