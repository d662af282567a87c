// Compiles what users copy: every ```ts / ```typescript block of the READMEs
// (packages/*/README.md, README.md, examples/*/README.md), strictly, against
// the workspace packages' published declarations (dist/), and checks that a
// user of @headroom/pool and @headroom/health alone type-checks without ioredis.
//
// Each block is written to a temporary directory next to its README, so
// imports resolve the way they do for that package's users (the package's
// own name, its dependencies), compiled as an ES module with strict: true and
// skipLibCheck: false, then removed. A block that is deliberately a fragment
// is fenced ```ts nocompile (keep it rare and say why next to it).
// Run by `pnpm typecheck`, after the build.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const TMP = '.readme-check'

const options = {
  strict: true,
  noUncheckedIndexedAccess: true,
  skipLibCheck: false,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts'],
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  types: ['node'],
  esModuleInterop: true
}

function readmes () {
  const list = [join(root, 'README.md')]
  for (const parent of ['packages', 'examples']) {
    for (const name of readdirSync(join(root, parent))) {
      const file = join(root, parent, name, 'README.md')
      if (existsSync(file)) list.push(file)
    }
  }
  return list
}

/**
 * The compilation units of one README: [{ readme, lines: [[text, readme line]] }].
 * A block fenced ```ts continues is appended to the one before it (its
 * imports hoisted, its body in a block scope): a short snippet that uses the
 * quick-start's `app` is compiled with it, as a reader would run it.
 */
function units (readme) {
  const found = []
  const lines = readFileSync(readme, 'utf8').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|typescript)(\s.*)?$/.exec(lines[i])
    if (!open) continue
    const start = i + 1
    while (i + 1 < lines.length && !/^```\s*$/.test(lines[++i]));
    const info = open[2] ?? ''
    if (/\bnocompile\b/.test(info)) continue
    const body = lines.slice(start, i).map((text, k) => [text, start + k + 1])
    const previous = found.at(-1)
    if (/\bcontinues\b/.test(info) && previous) {
      const imports = body.filter(([text]) => /^import\s/.test(text))
      const rest = body.filter(([text]) => !/^import\s/.test(text))
      previous.lines = [...imports, ...previous.lines, ['{', 0], ...rest, ['}', 0]]
    } else {
      found.push({ readme, lines: body })
    }
  }
  return found
}

/** errors inside third-party declarations (tap's, with skipLibCheck off) are theirs; ours are in packages/<name>/dist */
const theirs = (d) => d.file !== undefined && /[/\\]node_modules[/\\]/.test(d.file.fileName)

function report (all, where) {
  const diagnostics = all.filter((d) => !theirs(d))
  for (const d of diagnostics) {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n')
    if (d.file && d.start !== undefined) {
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start)
      const at = where(d.file.fileName, line)
      console.error(`${at ?? `${relative(root, d.file.fileName)}:${line + 1}:${character + 1}`} TS${d.code}: ${text}`)
    } else {
      console.error(`TS${d.code}: ${text}`)
    }
  }
  return diagnostics.length
}

function checkReadmes () {
  const files = new Map()
  const dirs = new Set()
  for (const readme of readmes()) {
    units(readme).forEach((unit, n) => {
      const dir = join(dirname(readme), TMP)
      dirs.add(dir)
      mkdirSync(dir, { recursive: true })
      const file = join(dir, `block-${n + 1}.ts`)
      // `export {}`: a block is a module even without imports (top-level await)
      writeFileSync(file, `${unit.lines.map(([text]) => text).join('\n')}\nexport {}\n`)
      files.set(file, unit)
    })
  }
  try {
    const program = ts.createProgram([...files.keys()], options)
    const errors = report(ts.getPreEmitDiagnostics(program), (fileName, line) => {
      const unit = files.get(resolve(fileName))
      return unit && `${relative(root, unit.readme)}:${unit.lines[line]?.[1] ?? '?'}`
    })
    console.log(`README blocks: ${files.size} compiled, ${errors} error(s)`)
    return errors
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A user of pool and health alone: compiled in examples/finance-api (which
 * depends on both) with a host on which 'ioredis' does not exist, as in a
 * project that never installed it.
 */
function checkWithoutIoredis () {
  const dir = join(root, 'examples', 'finance-api', TMP)
  const file = join(dir, 'no-ioredis.ts')
  mkdirSync(dir, { recursive: true })
  writeFileSync(file, [
    "import Fastify from 'fastify'",
    "import headroomPool from '@headroom/pool'",
    "import headroomHealth from '@headroom/health'",
    'const app = Fastify()',
    'await app.register(headroomHealth, { handleSignals: false })',
    "await app.register(headroomPool, { primary: 'postgres://localhost/test' })",
    "const { rows } = await app.db.read<{ n: number }>('SELECT 1 AS n')",
    'export const n: number | undefined = rows[0]?.n',
    ''
  ].join('\n'))
  try {
    const host = ts.createCompilerHost(options)
    const resolveOne = (name, containing) =>
      /^ioredis(\/|$)|^@types\/ioredis/.test(name) ? undefined : ts.resolveModuleName(name, containing, options, host).resolvedModule
    host.resolveModuleNames = (names, containing) => names.map((name) => resolveOne(name, containing))
    const program = ts.createProgram([file], options, host)
    let errors = report(ts.getPreEmitDiagnostics(program), () => undefined)
    const leaked = program.getSourceFiles().filter((f) => /[/\\]ioredis[/\\]/.test(f.fileName))
    for (const f of leaked) console.error(`ioredis reached by a pool/health user: ${relative(root, f.fileName)}`)
    errors += leaked.length
    console.log(`pool + health without ioredis: ${errors} error(s)`)
    return errors
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const failures = checkReadmes() + checkWithoutIoredis()
if (failures > 0) process.exitCode = 1
