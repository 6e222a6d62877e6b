/**
 * The prebuilt platform packages: which exist for which platform, what their
 * manifest says, and how a failed `dlopen` is explained (which shared library,
 * which Debian package provides it). Shared by the loader, `anomalyncd doctor`,
 * `scripts/install.mjs` and `scripts/pack-platforms.mjs` (one table).
 * @internal
 * @module
 */

/** One prebuilt binary package. */
export interface PlatformVariant {
  /** npm package name (`anomalyncd-<platform>-<arch>-<distribution>-<cpu|cuda>`). */
  readonly name: string;
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  /** `os`/`cpu`/`libc` cannot say this: the loader tries a CUDA variant only when a GPU is usable. */
  readonly accelerator: 'cpu' | 'cuda';
  /** Human words for what it needs besides Node. */
  readonly needs: string;
}

/**
 * The variants, in the order the loader tries them on their platform (CUDA first:
 * it is skipped when no GPU is usable). The CPU package is built with
 * ANOMALYNCD_CUDA=OFF against Debian 12's libtorch 1.13 and OpenCV 4.6.
 */
export const PLATFORM_VARIANTS: readonly PlatformVariant[] = [
  {
    name: 'anomalyncd-linux-x64-debian12-cuda',
    platform: 'linux',
    arch: 'x64',
    accelerator: 'cuda',
    needs: "glibc ≥ 2.36, OpenCV 4.6 (Debian 12), the CUDA libtorch it was built against (LIBTORCH at pack time; on LD_LIBRARY_PATH) and an NVIDIA driver",
  },
  {
    name: 'anomalyncd-linux-x64-debian12-cpu',
    platform: 'linux',
    arch: 'x64',
    accelerator: 'cpu',
    needs: "glibc ≥ 2.36, Debian 12's libtorch 1.13 (libtorch1.13) and OpenCV 4.6 (libopencv-core406, libopencv-imgproc406, libopencv-imgcodecs406), libpng16-16",
  },
];

/** The variants for this process's platform, in the loader's order. */
export function variantsFor(platform: string = process.platform, arch: string = process.arch): PlatformVariant[] {
  return PLATFORM_VARIANTS.filter((v) => v.platform === platform && v.arch === arch);
}

/** One shared library a packaged binary links (its ELF NEEDED entry), and what provides it. */
export interface ManifestLibrary {
  /** The NEEDED name, e.g. `libtorch_cpu.so.1.13`. */
  readonly soname: string;
  /** Where it resolved when packed (`ldd`), or null. */
  readonly path: string | null;
  /** The Debian package that provides it (`dpkg -S` when packed), or null (libtorch from LIBTORCH, ...). */
  readonly debian: string | null;
}

/** `manifest.json` of a platform package, written by `scripts/pack-platforms.mjs`. */
export interface PlatformManifest {
  readonly name: string;
  readonly version: string;
  readonly accelerator: 'cpu' | 'cuda';
  readonly platform: string;
  readonly arch: string;
  readonly libc: string;
  readonly napi: number;
  readonly node: string;
  readonly builtAt: string;
  readonly distribution: string;
  readonly versions: { readonly libtorch: string; readonly opencv: string; readonly openblas: string | null; readonly cuda: number | null; readonly cxx11Abi?: boolean };
  /** File → its NEEDED libraries (not the always-present C runtime). */
  readonly files: Readonly<Record<string, readonly ManifestLibrary[]>>;
  /** Every Debian package those libraries come from: `apt-get install` these to run it. */
  readonly aptPackages: readonly string[];
}

/** Debian 12 packages of the libraries our binaries link, for binaries without a manifest. */
const DEBIAN_LIBRARIES: readonly [RegExp, string][] = [
  [/^lib(torch|torch_cpu|torch_global_deps|c10|shm)\.so/, 'libtorch1.13'],
  [/^libopencv_([a-z0-9]+)\.so\.406/, 'libopencv-$1406'],
  [/^libpng16\.so/, 'libpng16-16'],
  [/^libopenblas\.so/, 'libopenblas0'],
  [/^libgomp\.so/, 'libgomp1'],
  [/^libstdc\+\+\.so/, 'libstdc++6'],
  [/^libgcc_s\.so/, 'libgcc-s1'],
];

/** The Debian package of a shared library, from a manifest if given, else the table above. */
export function debianPackageOf(soname: string, manifest?: PlatformManifest): string | null {
  if (manifest) {
    for (const libs of Object.values(manifest.files)) {
      const hit = libs.find((l) => l.soname === soname || soname.startsWith(l.soname) || l.soname.startsWith(soname));
      if (hit?.debian) return hit.debian;
    }
  }
  for (const [re, pkg] of DEBIAN_LIBRARIES) {
    const m = re.exec(soname);
    if (m) return pkg.replace('$1', (m[1] ?? '').replace(/_/g, '-'));
  }
  return null;
}

/** Why a binary did not load, read from the dynamic loader's message. */
export interface LoadFailure {
  kind: 'missing-library' | 'abi' | 'platform' | 'other';
  /** One line for a person. */
  reason: string;
  /** The missing shared library, for `missing-library`. */
  library?: string;
  /** The Debian package that provides it, when known. */
  debian?: string;
}

/** Classifies a `dlopen`/`process.dlopen` error message. */
export function explainLoadError(message: string, manifest?: PlatformManifest): LoadFailure {
  const first = message.split('\n')[0] ?? message;
  const missing = /([^\s:/]+\.so[.\d]*): cannot open shared object file/.exec(message);
  if (missing) {
    const library = missing[1]!;
    const debian = debianPackageOf(library, manifest);
    return {
      kind: 'missing-library',
      library,
      ...(debian ? { debian } : {}),
      reason: `missing shared library ${library}` + (debian ? ` (Debian package ${debian})` : ''),
    };
  }
  const version = /version `([A-Z+]+_[\d.]+)' not found(?: \(required by ([^)]+)\))?/.exec(message);
  if (version)
    return {
      kind: 'abi',
      reason: `ABI: this system's ${version[1]!.startsWith('GLIBCXX') ? 'C++ runtime (libstdc++)' : 'C library (glibc)'} is older than the one it was built on (${version[1]} not found)`,
    };
  const symbol = /undefined symbol: (\S+)/.exec(message);
  if (symbol)
    return { kind: 'abi', reason: `ABI: undefined symbol ${symbol[1]!.slice(0, 80)} (a library of another version than the one it was built against, e.g. another libtorch)` };
  if (/invalid ELF header|wrong ELF class|ELFCLASS|file too short|Exec format error|not a valid Win32|wrong machine/.test(first))
    return { kind: 'platform', reason: `platform: not a binary for ${process.platform}-${process.arch} (${first.slice(0, 160)})` };
  if (/NODE_MODULE_VERSION|did not self-register|N-API|napi/i.test(first)) return { kind: 'abi', reason: `ABI: ${first.slice(0, 200)}` };
  return { kind: 'other', reason: first.slice(0, 240) };
}
