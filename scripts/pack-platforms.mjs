// npm run pack:platforms — packs, into dist-packages/ (git-ignored), the main
// package's tarball and one platform package per binary built here:
//   anomalyncd-linux-x64-debian12-cpu   always: Debian 12's libtorch 1.13 + OpenCV 4.6, ANOMALYNCD_CUDA=OFF
//   anomalyncd-linux-x64-debian12-cuda  when LIBTORCH names a CUDA libtorch (lib/libtorch_cuda.so), or --cuda
// Each platform package holds the two production addons, the codecs module and
// manifest.json (libtorch / OpenCV / OpenBLAS / CUDA versions, every NEEDED
// library with its path and Debian package, the apt packages to install). The
// main tarball lists the packed variants in optionalDependencies (same version);
// the repository's package.json does not (nothing is published, and `npm ci`
// would look them up), so they are written into the packed copy only.
//
// Options:
//   --out DIR         where the tarballs go (default dist-packages/)
//   --from-build DIR  package the CPU variant from an existing Release build folder
//                     (e.g. build/Release, as CI's bootstrap made it) instead of building;
//                     refused if that build has CUDA in it
//   --cuda            also build the CUDA variant (needs LIBTORCH=<CUDA libtorch> and nvcc)
//   --no-main         only the platform packages
// Builds go to build-<platform>-<arch>-<distribution>-<cpu|cuda>/ (git-ignored) with the self-tests off;
// ccache is used when installed.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const out = resolve(opt('--out') ?? join(root, 'dist-packages'));
const fromBuild = opt('--from-build') ? resolve(opt('--from-build')) : undefined;
const wantCuda = args.includes('--cuda') || (process.env.LIBTORCH && existsSync(join(process.env.LIBTORCH, 'lib', 'libtorch_cuda.so')));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const FILES = ['anomalyncd_core.node', 'anomalyncd_model.node', 'anomalyncd_codecs.so'];
// The C runtime every Linux has: not listed as a dependency to install.
const ALWAYS_THERE = /^(libc|libm|libdl|libpthread|librt|ld-linux[-\w]*)\.so/;

function sh(cmd, cmdArgs, options = {}) {
  const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (r.error) throw r.error;
  return r;
}
function must(cmd, cmdArgs, options = {}) {
  const r = sh(cmd, cmdArgs, options);
  if (r.status !== 0) {
    process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
    throw new Error(`pack-platforms: ${cmd} ${cmdArgs.join(' ')} failed (${r.status})`);
  }
  return r.stdout ?? '';
}
const npm = process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath) ? [process.execPath, process.env.npm_execpath] : ['npm'];
const runNpm = (npmArgs, cwd) => must(npm[0], [...npm.slice(1), ...npmArgs], { cwd });

/** cmake-js build of the production addons into build-<variant minus "anomalyncd-">/. */
function build(variant, cuda) {
  // One level deep, like build/: ccache (CCACHE_BASEDIR) then reuses the objects of a checkout build.
  const dir = join(root, `build-${variant.replace(/^anomalyncd-/, '')}`);
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  const env = { ...process.env };
  const cmakeArgs = ['compile', '--out', dir, '--CDCMAKE_BUILD_TYPE=Release', '--CDANOMALYNCD_SELFTESTS=OFF', `--CDANOMALYNCD_CUDA=${cuda ? 'ON' : 'OFF'}`];
  if (!cuda) {
    // The CPU package is Debian's libtorch, whatever the environment names.
    delete env.LIBTORCH;
    delete env.Torch_DIR;
  }
  if (sh('ccache', ['--version']).status === 0) cmakeArgs.push('--CDCMAKE_CXX_COMPILER_LAUNCHER=ccache');
  console.log(`pack-platforms: building ${variant}: cmake-js ${cmakeArgs.join(' ')}`);
  const r = spawnSync(process.execPath, [cmakeJs, ...cmakeArgs], { cwd: root, env, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`pack-platforms: building ${variant} failed`);
  return join(dir, 'Release');
}

/** ELF NEEDED entries of a file (readelf). */
function needed(file) {
  return [...must('readelf', ['-d', file]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/** soname → resolved path, from ldd. */
function resolved(file) {
  const map = {};
  for (const m of must('ldd', [file]).matchAll(/^\s*(\S+) => (\S+)/gm)) map[m[1]] = m[2] === 'not' ? null : m[2];
  return map;
}

/** The Debian packages owning files (one dpkg -S call; each path also as its merged-/usr twin). */
function debianPackages(paths) {
  const variants = new Map();
  for (const path of paths) {
    if (!path) continue;
    const real = existsSync(path) ? realpathSync(path) : path;
    variants.set(path, [...new Set([path, real].flatMap((p) => [p, p.replace(/^\/lib\//, '/usr/lib/'), p.replace(/^\/usr\/lib\//, '/lib/')]))]);
  }
  const all = [...new Set([...variants.values()].flat())];
  const owner = new Map();
  if (all.length && sh('dpkg', ['--version']).status === 0)
    for (const m of (sh('dpkg', ['-S', ...all]).stdout ?? '').matchAll(/^([^:\n]+)(?::[\w-]+)?: (\S+)$/gm)) owner.set(m[2], m[1].split(',')[0].trim());
  return (path) => (variants.get(path) ?? []).map((p) => owner.get(p)).find(Boolean) ?? null;
}

function buildInfoOf(dir) {
  const r = must(process.execPath, ['-e', `process.stdout.write(JSON.stringify(require(${JSON.stringify(join(dir, 'anomalyncd_model.node'))}).buildInfo()))`]);
  return JSON.parse(r);
}

function packPlatform(variant, accelerator, dir) {
  for (const f of FILES) if (!existsSync(join(dir, f))) throw new Error(`pack-platforms: ${join(dir, f)} is missing`);
  const info = buildInfoOf(dir);
  const hasCuda = info.cuda.libtorchCuda || info.cuda.kernels || FILES.some((f) => needed(join(dir, f)).some((n) => /cuda|cudart|cublas/.test(n)));
  if (accelerator === 'cpu' && hasCuda) throw new Error(`pack-platforms: ${dir} is a CUDA build: the CPU package must be built with ANOMALYNCD_CUDA=OFF against a CPU libtorch`);
  const stage = join(out, 'stage', variant);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  const files = {};
  const apt = new Set();
  const links = Object.fromEntries(FILES.map((f) => [f, { paths: resolved(join(dir, f)), needed: needed(join(dir, f)).filter((n) => !ALWAYS_THERE.test(n)) }]));
  const debianPackage = debianPackages(Object.values(links).flatMap((l) => l.needed.map((n) => l.paths[n])));
  for (const f of FILES) {
    copyFileSync(join(dir, f), join(stage, f));
    const { paths } = links[f];
    files[f] = links[f].needed
      .map((soname) => {
        const path = paths[soname] ?? null;
        const debian = debianPackage(path);
        if (debian) apt.add(debian);
        return { soname, path, debian };
      });
  }
  const openblas = info.openblas?.config ? (/OpenBLAS\s+([\d.]+)/.exec(info.openblas.config)?.[1] ?? info.openblas.config) : null;
  const header = process.report.getReport().header;
  const manifest = {
    name: variant,
    version: pkg.version,
    accelerator,
    platform: process.platform,
    arch: process.arch,
    libc: `glibc ${header.glibcVersionRuntime}`,
    napi: 8,
    node: process.version,
    builtAt: new Date().toISOString(),
    distribution: readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]+)/m)?.[1] ?? 'unknown',
    versions: { libtorch: info.libtorch, opencv: info.opencv, openblas, cuda: info.cuda.runtimeVersion, cxx11Abi: info.cxx11Abi },
    files,
    aptPackages: [...apt].sort(),
  };
  writeFileSync(join(stage, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  const platformPkg = {
    name: variant,
    version: pkg.version,
    description: `Prebuilt native addons of anomalyncd ${pkg.version} for ${process.platform}-${process.arch} (${manifest.distribution}; libtorch ${info.libtorch}, OpenCV ${info.opencv}${accelerator === 'cuda' ? ', CUDA' : ', CPU only'}). Installed through anomalyncd's optionalDependencies.`,
    license: pkg.license,
    os: [process.platform],
    cpu: [process.arch],
    libc: ['glibc'],
    files: [...FILES, 'manifest.json', 'README.md'],
  };
  writeFileSync(join(stage, 'package.json'), JSON.stringify(platformPkg, null, 2) + '\n');
  writeFileSync(
    join(stage, 'README.md'),
    `# ${variant}\n\nThe prebuilt native addons of [anomalyncd](https://www.npmjs.com/package/anomalyncd) ${pkg.version}; install \`anomalyncd\`, not this.\n\n` +
      `Built on ${manifest.distribution} against libtorch ${info.libtorch} and OpenCV ${info.opencv}${accelerator === 'cuda' ? ' with CUDA' : ', CUDA off'}. ` +
      `It links system libraries: \`apt-get install ${manifest.aptPackages.join(' ')}\` if the loader says one is missing. ` +
      'Every linked library is listed in `manifest.json`.\n',
  );
  const packed = JSON.parse(runNpm(['pack', '--json', '--pack-destination', out], stage))[0];
  console.log(`pack-platforms: ${join(out, packed.filename)} (${(packed.size / 1e6).toFixed(1)} MB, ${packed.entryCount} files; libtorch ${info.libtorch}, OpenCV ${info.opencv}; apt: ${manifest.aptPackages.join(' ')})`);
  return packed.filename;
}

function packMain(variants) {
  // What `npm pack` would ship from the repository ("files"), minus any binary under prebuilds/.
  const listed = JSON.parse(runNpm(['pack', '--dry-run', '--json', '--ignore-scripts'], root))[0].files.map((f) => f.path);
  const stage = join(out, 'stage', 'anomalyncd');
  rmSync(stage, { recursive: true, force: true });
  for (const path of listed) {
    if (path === 'package.json') continue;
    if (/^prebuilds\/[^/]+\//.test(path) || /\.(node|so)$/.test(path)) continue;
    mkdirSync(dirname(join(stage, path)), { recursive: true });
    cpSync(join(root, path), join(stage, path));
  }
  const mainPkg = { ...pkg, optionalDependencies: { ...(pkg.optionalDependencies ?? {}), ...Object.fromEntries(variants.map((v) => [v, pkg.version])) } };
  writeFileSync(join(stage, 'package.json'), JSON.stringify(mainPkg, null, 2) + '\n');
  const packed = JSON.parse(runNpm(['pack', '--json', '--ignore-scripts', '--pack-destination', out], stage))[0];
  console.log(`pack-platforms: ${join(out, packed.filename)} (${(packed.size / 1e6).toFixed(1)} MB, ${packed.entryCount} files; optionalDependencies: ${variants.join(', ')})`);
  return packed.filename;
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`pack-platforms: only linux-x64 variants are defined (ts/native/platforms.ts); this is ${process.platform}-${process.arch}`);
  process.exit(1);
}
if (!existsSync(join(root, 'dist', 'ts', 'index.js'))) {
  console.error('pack-platforms: dist/ts is missing: run `npm run build:ts` first (npm run pack:platforms does)');
  process.exit(1);
}
mkdirSync(out, { recursive: true });
const variants = [];
const tarballs = [];
try {
  tarballs.push(packPlatform('anomalyncd-linux-x64-debian12-cpu', 'cpu', fromBuild ?? build('anomalyncd-linux-x64-debian12-cpu', false)));
  variants.push('anomalyncd-linux-x64-debian12-cpu');
  if (wantCuda) {
    if (!process.env.LIBTORCH) throw new Error('pack-platforms: --cuda needs LIBTORCH=<a CUDA libtorch folder>');
    tarballs.push(packPlatform('anomalyncd-linux-x64-debian12-cuda', 'cuda', build('anomalyncd-linux-x64-debian12-cuda', true)));
    variants.push('anomalyncd-linux-x64-debian12-cuda');
  }
  if (!args.includes('--no-main')) tarballs.unshift(packMain(variants));
  rmSync(join(out, 'stage'), { recursive: true, force: true });
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
writeFileSync(join(out, 'packages.json'), JSON.stringify({ version: pkg.version, tarballs, variants }, null, 1) + '\n');
console.log(`pack-platforms: ${tarballs.length} tarball(s) in ${relative(process.cwd(), out) || '.'}`);
