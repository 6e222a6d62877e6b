/**
 * Types of the raw native addon, kept apart from the public API (which
 * validates inputs and wraps these calls).
 * @internal
 * @module
 */

/** A tensor as the addon reads it. */
export interface RawTensor {
  dtype: string;
  shape: readonly number[];
  data: ArrayBufferView;
}

/** What every Promise-returning native call hands back. */
export interface RawJob<T> {
  promise: Promise<T>;
  cancel(): void;
}

/** Progress callback of native jobs. */
export type RawProgress = (done: number, total: number, stage: string) => void;

export interface RawMebinOptions {
  sampleRate?: number;
  minIntervalLen?: number;
  erode?: boolean;
  range?: [number, number];
  threads?: number;
  returnBinary?: boolean;
  oracle?: boolean;
  /** Write each binary map as PNG to writeDir/names[i]. */
  writeDir?: string;
  names?: string[];
}

export interface RawMebinMap {
  threshold: number;
  count: number;
  sequence: number[];
  foreground: number;
  height: number;
  width: number;
  binary?: ArrayBuffer;
}

export interface RawMebinResult {
  searchRange: [number, number];
  maps: RawMebinMap[];
  msPerMap: number;
  warnings: string[];
}

export interface RawRegionsOptions extends RawMebinOptions {
  padding?: number;
  maxMergeDist?: number;
  minCropSize?: number;
  /** Write crops as PNG into this folder (relative names come back). */
  writeDir?: string;
  returnPixels?: boolean;
}

export interface RawCrop {
  box: [number, number, number, number];
  maskArea: number;
  score: number;
  width: number;
  height: number;
  channels: number;
  image?: ArrayBuffer;
  mask?: ArrayBuffer;
  imageFile?: string;
  maskFile?: string;
}

export interface RawRegionsItem extends Omit<RawMebinMap, 'binary'> {
  imageHeight: number;
  imageWidth: number;
  crops: RawCrop[];
}

export interface RawRegionsResult {
  searchRange: [number, number];
  items: RawRegionsItem[];
  msPerMap: number;
  msPerImage: number;
  warnings: string[];
}

export interface RawRegionsInput {
  image: string | RawTensor;
  map: string | RawTensor;
  /** File stem used for written crops. */
  name?: string;
}

/** The addon's exports. */
export interface Addon {
  setErrorClass(factory: (code: string, message: string) => Error): void;
  mebin(maps: (string | RawTensor)[], options: RawMebinOptions, onProgress?: RawProgress): RawJob<RawMebinResult>;
  regions(items: RawRegionsInput[], options: RawRegionsOptions, onProgress?: RawProgress): RawJob<RawRegionsResult>;
  versions: { libtorch: string; opencv: string };
  /** Synchronous building blocks for tests on small inputs. */
  kernels: {
    selectThreshold(
      counts: number[],
      range: [number, number],
      options?: RawMebinOptions,
    ): { est: number; threshold: number; endIndex: number; fallback: boolean };
    mergeBoxes(boxes: number[][], S: number, options?: RawRegionsOptions): [number, number, number, number][];
    regionBoxes(binary: RawTensor, options?: RawRegionsOptions): [number, number, number, number][];
    resizeBicubicF32(src: RawTensor, outH: number, outW: number): Float32Array;
    resizeBilinearU8(src: RawTensor, outH: number, outW: number): Uint8Array;
  };
}
