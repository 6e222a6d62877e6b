/**
 * The one error family of the library. Every failure, whether found in
 * TypeScript or thrown by the native core, is an {@link AnomalyNCDError} with
 * a stable {@link ErrorCode}; subclasses let callers `instanceof`-match.
 * @module
 */

/** Stable error codes (kept identical to `cpp/common/error.h`). */
export type ErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_BAD_INPUT'
  | 'ERR_IO'
  | 'ERR_CHECKPOINT'
  | 'ERR_ABORTED'
  | 'ERR_LIMIT'
  | 'ERR_INTERNAL'
  | 'ERR_DEVICE'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_NATIVE_LOAD';

/** Base class of every error this library throws or rejects with. */
export class AnomalyNCDError extends Error {
  /** Machine-readable reason. */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An argument or option is wrong (type, range, shape, missing). */
export class InvalidArgumentError extends AnomalyNCDError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_ARGUMENT', message, options);
  }
}

/** Input data is unusable: wrong image format, truncated file, NaN values. */
export class BadInputError extends AnomalyNCDError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BAD_INPUT', message, options);
  }
}

/** A file or folder cannot be read or written. */
export class IoError extends AnomalyNCDError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_IO', message, options);
  }
}

/** A model checkpoint is corrupt, truncated, hostile or does not fit the architecture. */
export class CheckpointError extends AnomalyNCDError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CHECKPOINT', message, options);
  }
}

/** The caller aborted the operation through its `AbortSignal`. */
export class AbortError extends AnomalyNCDError {
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super('ERR_ABORTED', message, options);
  }
}

/**
 * An input is over one of the size limits ({@link Limits}: pixels per image or map, crops
 * per call, tensor elements), found before memory is allocated for it; the message names
 * the limit. Raise it with {@link setLimits} when the input is genuine.
 */
export class LimitError extends AnomalyNCDError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_LIMIT', message, options);
  }
}

/** A bug, or a failure inside libtorch/OpenCV that is not the caller's fault. */
export class InternalError extends AnomalyNCDError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INTERNAL', message, options);
  }
}

/**
 * The requested device cannot be used: the build has no CUDA, no CUDA device is present,
 * or the device index is out of range (the message names which).
 */
export class DeviceError extends AnomalyNCDError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DEVICE', message, options);
  }
}

/** The device (GPU) ran out of memory; a smaller `batchSize` may fit. */
export class OutOfMemoryError extends AnomalyNCDError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_OUT_OF_MEMORY', message, options);
  }
}

/** The native addon or libtorch could not be loaded. */
export class NativeLoadError extends AnomalyNCDError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NATIVE_LOAD', message, options);
  }
}

const byCode: Record<ErrorCode, new (message: string) => AnomalyNCDError> = {
  ERR_INVALID_ARGUMENT: InvalidArgumentError,
  ERR_BAD_INPUT: BadInputError,
  ERR_IO: IoError,
  ERR_CHECKPOINT: CheckpointError,
  ERR_ABORTED: AbortError,
  ERR_LIMIT: LimitError,
  ERR_INTERNAL: InternalError,
  ERR_DEVICE: DeviceError,
  ERR_OUT_OF_MEMORY: OutOfMemoryError,
  ERR_NATIVE_LOAD: NativeLoadError,
};

/** Builds the subclass for `code` (used by the native core, handed over at load). */
export function errorFromCode(code: string, message: string): AnomalyNCDError {
  const Ctor = byCode[code as ErrorCode] ?? InternalError;
  return new Ctor(message);
}

/**
 * A caller's value as text for an error message, never throwing: a Proxy or an
 * object whose toString/valueOf misbehaves must not turn a typed error into a
 * TypeError (found by test/55-boundary-fuzz).
 * @internal
 */
export function shown(v: unknown): string {
  try {
    if (typeof v === 'object' && v !== null) return Array.isArray(v) ? `an array of ${v.length}` : 'an object';
    if (typeof v === 'function') return 'a function';
    if (typeof v === 'symbol') return v.toString();
    return String(v);
  } catch {
    return typeof v;
  }
}
