/**
 * `anomalyncd build`: compiles the native addons in place (cmake-js, in the
 * installed package's folder) for this machine, another libtorch (`--libtorch`)
 * or CUDA (`--cuda`), with progress and a summary. What it builds is then
 * loaded before any prebuilt platform package (build/Release/anomalyncd-build.json).
 * @internal
 * @module
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { InternalError, InvalidArgumentError } from '../../core/errors.js';
import { BUILD_MARKER, BUILD_TOOLS_DEBIAN, packageRoot } from '../../native/loader.js';
import { count, flagHelp, parseFlags, text, toggle } from '../flags.js';
import type { Command } from '../output.js';

const FLAGS = {
  cuda: toggle({ help: 'Build with CUDA (ANOMALYNCD_CUDA=ON; needs nvcc and a CUDA libtorch, see --libtorch).' }),
  'no-cuda': toggle({ help: 'Build without CUDA (ANOMALYNCD_CUDA=OFF). Default: AUTO, CUDA when a toolkit is found.' }),
  libtorch: text({ placeholder: 'DIR', help: 'A libtorch folder (official prebuilt, or a torch install\'s site-packages/torch) instead of Debian\'s libtorch-dev.' }),
  jobs: count({ placeholder: 'N', help: 'Parallel compile jobs (sets CMAKE_BUILD_PARALLEL_LEVEL; default: as set, else the build tool default).' }),
  json: toggle({ help: 'Print the summary as JSON.' }),
} as const;

export const PRODUCTION_FILES = ['anomalyncd_core.node', 'anomalyncd_model.node', 'anomalyncd_codecs.so'] as const;

/** The cmake-js command line for these options (exported for tests). */
export function cmakeJsArgs(o: { cuda?: boolean; noCuda?: boolean; libtorchCmakeDir?: string }): string[] {
  const args = ['compile', '--CDCMAKE_BUILD_TYPE=Release', `--CDANOMALYNCD_CUDA=${o.cuda ? 'ON' : o.noCuda ? 'OFF' : 'AUTO'}`];
  if (o.libtorchCmakeDir) args.push(`--CDTorch_DIR=${o.libtorchCmakeDir}`);
  if (process.env.CMAKE_CXX_COMPILER_LAUNCHER) args.push(`--CDCMAKE_CXX_COMPILER_LAUNCHER=${process.env.CMAKE_CXX_COMPILER_LAUNCHER}`);
  return args;
}

async function run(args: string[]): Promise<void> {
  const flags = parseFlags('build', FLAGS, args);
  if (flags.cuda && flags.noCuda) throw new InvalidArgumentError('--cuda and --no-cuda exclude each other');
  let libtorchCmakeDir: string | undefined;
  if (flags.libtorch !== undefined) {
    const dir = resolve(flags.libtorch);
    libtorchCmakeDir = join(dir, 'share', 'cmake', 'Torch');
    if (!existsSync(libtorchCmakeDir)) throw new InvalidArgumentError(`--libtorch ${dir} has no share/cmake/Torch: point it at a libtorch folder or at site-packages/torch`);
  }
  const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
  if (cmake.status !== 0)
    throw new InvalidArgumentError(`cmake was not found. Install the build tools first (Debian 12, as root): apt-get install ${BUILD_TOOLS_DEBIAN}`);
  let cmakeJs: string;
  try {
    cmakeJs = join(dirname(createRequire(join(packageRoot, 'package.json')).resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  } catch {
    throw new InvalidArgumentError(`cmake-js (a dependency of anomalyncd) is not installed under ${packageRoot}: run \`npm install\` there first`);
  }
  const cmakeArgs = cmakeJsArgs({ cuda: flags.cuda, noCuda: flags.noCuda, ...(libtorchCmakeDir ? { libtorchCmakeDir } : {}) });
  const env = { ...process.env, ...(flags.jobs !== undefined ? { CMAKE_BUILD_PARALLEL_LEVEL: String(flags.jobs) } : {}), ...(flags.libtorch !== undefined ? { LIBTORCH: resolve(flags.libtorch) } : {}) };
  const logPath = join(packageRoot, 'build', 'anomalyncd-build.log');
  await import('node:fs/promises').then((fs) => fs.mkdir(join(packageRoot, 'build'), { recursive: true }));
  const log = createWriteStream(logPath);
  const say = (line: string) => (flags.json ? process.stderr : process.stdout).write(line + '\n');
  say(`anomalyncd build: cmake-js ${cmakeArgs.join(' ')} in ${packageRoot}${flags.libtorch ? ` (LIBTORCH=${resolve(flags.libtorch)})` : ''}; log: ${logPath}`);
  const t0 = performance.now();
  const tail: string[] = [];
  const status = await new Promise<number>((done, fail) => {
    const child = spawn(process.execPath, [cmakeJs, ...cmakeArgs], { cwd: packageRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    let lastShown = '';
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      pending += chunk.toString('utf8');
      const lines = pending.split(/\r?\n/);
      pending = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        // Ninja/Make progress: "[12/59] Building CXX object …" or "[ 40%] Building …".
        const m = /^\[\s*(\d+)\/(\d+)\]\s+(.*)$/.exec(line) ?? /^\[\s*(\d+)%\]\s+(.*)$/.exec(line);
        if (!m) continue;
        const shown = m.length === 4 ? `[${m[1]}/${m[2]}] ${m[3]!.replace(/ object CMakeFiles\/[^/]+\.dir\//, ' ')}` : `[${m[1]}%] ${m[2]}`;
        if (shown === lastShown) continue;
        lastShown = shown;
        if (process.stderr.isTTY && !flags.json) process.stderr.write(`\r\x1b[K${shown.slice(0, (process.stderr.columns ?? 100) - 1)}`);
        else (flags.json ? process.stderr : process.stdout).write(shown + '\n');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', fail);
    child.on('close', (code) => done(code ?? 1));
  });
  log.end();
  if (process.stderr.isTTY && !flags.json) process.stderr.write('\n');
  const seconds = (performance.now() - t0) / 1000;
  if (status !== 0) {
    process.stderr.write(tail.join('\n') + '\n');
    throw new InternalError(
      `the build failed after ${seconds.toFixed(0)} s (cmake-js exited with ${status}); the whole log is ${logPath}. ` +
        `It needs cmake ≥ 3.18, a C++17 compiler, OpenCV 4 and libpng (Debian 12: apt-get install ${BUILD_TOOLS_DEBIAN}) and libtorch ` +
        '(libtorch-dev, or --libtorch DIR).',
    );
  }
  const release = join(packageRoot, 'build', 'Release');
  const files = PRODUCTION_FILES.map((f) => join(release, f));
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length) throw new InternalError(`the build finished but did not produce ${missing.join(', ')}`);
  // Check the result loads, in a fresh process (this one may hold another binary).
  const probe = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const v = await import(${JSON.stringify(join(packageRoot, 'dist', 'ts', 'native', 'versions.js'))}); ` +
        `const l = await import(${JSON.stringify(join(packageRoot, 'dist', 'ts', 'native', 'loader.js'))}); l.coreAddon(); ` +
        'process.stdout.write(JSON.stringify(v.nativeBuildInfo() ?? null));',
    ],
    { encoding: 'utf8', env: { ...process.env, ANOMALYNCD_BINARY: 'build' } },
  );
  if (probe.status !== 0) throw new InternalError(`the build finished but its addons do not load:\n${probe.stderr.trim()}`);
  const info = JSON.parse(probe.stdout) as { libtorch: string; opencv: string; cuda: { libtorchCuda: boolean; kernels: boolean } } | null;
  const marker = {
    builtAt: new Date().toISOString(),
    node: process.version,
    options: { cuda: flags.cuda ? 'ON' : flags.noCuda ? 'OFF' : 'AUTO', libtorch: flags.libtorch !== undefined ? resolve(flags.libtorch) : null },
    versions: info,
  };
  writeFileSync(join(release, BUILD_MARKER), JSON.stringify(marker, null, 2) + '\n');
  const summary = {
    ok: true,
    seconds: Math.round(seconds * 10) / 10,
    dir: release,
    files: files.map((f) => ({ file: f, bytes: statSync(f).size })),
    libtorch: info?.libtorch ?? null,
    opencv: info?.opencv ?? null,
    cuda: info ? info.cuda.libtorchCuda || info.cuda.kernels : null,
  };
  if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else
    say(
      [
        `built in ${summary.seconds} s: ${summary.files.map((f) => `${f.file} (${(f.bytes / 1e6).toFixed(1)} MB)`).join(', ')}`,
        `libtorch ${summary.libtorch ?? '?'} · OpenCV ${summary.opencv ?? '?'} · CUDA ${summary.cuda ? 'on' : 'off'}`,
        'The library now loads this build first (before any prebuilt platform package). `npx anomalyncd doctor` checks it.',
      ].join('\n'),
    );
}

export const buildCommand: Command = { help: () => flagHelp('build', FLAGS), run };
