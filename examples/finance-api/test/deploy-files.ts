/**
 * Reading the deploy files the way their tools do, for the deploy-*.test.ts
 * files: the Kubernetes manifests through kustomization.yaml, the compose
 * file with its anchors merged, the Dockerfile through a Dockerfile parser.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { DockerfileParser } from 'dockerfile-ast'
import { parse, parseAllDocuments } from 'yaml'

export const DEPLOY_DIR = fileURLToPath(new URL('../deploy/', import.meta.url))
export const K8S_DIR = `${DEPLOY_DIR}k8s/`
export const EXAMPLE_DIR = fileURLToPath(new URL('../', import.meta.url))
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export type Obj = Record<string, any>

/** Every YAML document of a file, as plain objects; a syntax error throws with the file's name. */
export function yamlDocuments (text: string, name: string): Obj[] {
  return parseAllDocuments(text).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${name}: ${doc.errors.map((e) => e.message).join('; ')}`)
    return doc.toJS() as Obj
  }).filter((o) => o !== null && o !== undefined)
}

export interface Kustomization {
  dir: string
  namespace: string | undefined
  files: string[]
  objects: Obj[]
}

/** The objects a kustomization directory lists (namespace applied as kustomize does; images left by name). */
export function loadKustomization (dir: string): Kustomization {
  const k = parse(readFileSync(`${dir}kustomization.yaml`, 'utf8')) as Obj
  const files = (k.resources ?? []) as string[]
  const objects = files.flatMap((f) => yamlDocuments(readFileSync(`${dir}${f}`, 'utf8'), f))
  for (const o of objects) {
    if (k.namespace && o.kind !== 'Namespace') o.metadata = { ...o.metadata, namespace: k.namespace }
  }
  return { dir, namespace: k.namespace, files, objects }
}

export function yamlFilesIn (dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()
}

export function find (objects: Obj[], kind: string, name?: string): Obj {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata?.name === name))
  if (!o) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in the manifests`)
  return o
}

/** The compose file with YAML merge keys (`<<: *app`) resolved, as compose reads it. */
export function loadCompose (text = readFileSync(`${DEPLOY_DIR}compose.yaml`, 'utf8')): Obj {
  return parse(text, { merge: true }) as Obj
}

/** Compose services that run the finance-api image (the apps and the migration). */
export function composeAppServices (compose: Obj): Array<[string, Obj]> {
  return Object.entries(compose.services as Obj).filter(([, s]) =>
    String(s.image ?? '').startsWith('finance-api') || String(s.build?.dockerfile ?? '').endsWith('deploy/Dockerfile'))
}

/** A compose `environment` (map or KEY=VALUE list) as a map. */
export function composeEnv (service: Obj): Record<string, string> {
  const env = service.environment ?? {}
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e: string) => {
      const i = e.indexOf('=')
      return i === -1 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)]
    }))
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v ?? '')]))
}

/** compose durations: 20s, 1m30s, 500ms */
export function composeDurationMs (raw: string): number {
  let total = 0
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s|us)/g
  let m: RegExpExecArray | null
  let matched = ''
  while ((m = re.exec(raw)) !== null) {
    const n = Number(m[1])
    total += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : m[2] === 'ms' ? n : n / 1000
    matched += m[0]
  }
  if (matched !== raw) throw new Error(`not a compose duration: ${raw}`)
  return total
}

export interface DockerfileInfo {
  /** RUN lines of the build stage, each as its shell command (--mount flags dropped) */
  runs: string[]
  /** ENV of the final stage */
  env: Record<string, string>
  expose: number[]
  entrypoint: string[]
  cmd: string[]
  /** ARG defaults before the first FROM (NODE_VERSION, PNPM_VERSION) */
  args: Record<string, string>
  /** every FROM's image reference, ARGs substituted */
  bases: string[]
  /** WORKDIR of the build stage, where `COPY . .` put the repository */
  buildWorkdir: string | undefined
  /** COPY --from=build <source> <dest> of the final stage */
  copiesFromBuild: Array<{ from: string, to: string }>
  healthcheck: string | undefined
  stopSignal: string | undefined
  user: string | undefined
}

function execForm (args: string): string[] {
  const parsed = JSON.parse(args) as unknown
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not an exec form: ${args}`)
  return parsed as string[]
}

/** The Dockerfile through dockerfile-ast (the parser of VS Code's Docker extension). */
export function readDockerfile (text = readFileSync(`${DEPLOY_DIR}Dockerfile`, 'utf8')): DockerfileInfo {
  const dockerfile = DockerfileParser.parse(text)
  const froms = dockerfile.getFROMs()
  if (froms.length < 2) throw new Error('the Dockerfile should have a build stage and a runtime stage')
  const instructions = dockerfile.getInstructions()
  const lastFrom = froms[froms.length - 1]!
  const runtimeStart = instructions.indexOf(lastFrom)
  const info: DockerfileInfo = { runs: [], env: {}, expose: [], entrypoint: [], cmd: [], copiesFromBuild: [], buildWorkdir: undefined, args: {}, bases: [], healthcheck: undefined, stopSignal: undefined, user: undefined }
  const firstFrom = instructions.indexOf(froms[0]!)
  for (const ins of instructions.slice(0, firstFrom)) {
    if (ins.getKeyword() !== 'ARG') continue
    const [name, value] = (ins.getArgumentsContent() ?? '').trim().split('=')
    if (name && value !== undefined) info.args[name] = value
  }
  info.bases = froms.map((f) => (f.getArguments()[0]?.getValue() ?? '').replace(/\$\{(\w+)\}/g, (_, n: string) => info.args[n] ?? ''))
  instructions.forEach((ins, i) => {
    const keyword = ins.getKeyword()
    const runtime = i > runtimeStart
    // the instruction's text without the keyword, continuation lines joined
    const args = ins.getArgumentsContent()?.replace(/\\\r?\n\s*/g, ' ') ?? ''
    if (keyword === 'RUN' && !runtime) info.runs.push(args.replace(/--mount=\S+\s+/g, '').trim())
    if (keyword === 'WORKDIR' && !runtime) info.buildWorkdir = args.trim()
    if (!runtime) return
    if (keyword === 'ENV') {
      for (const p of ins.getArguments().map((a) => a.getValue())) {
        const eq = p.indexOf('=')
        if (eq > 0) info.env[p.slice(0, eq)] = p.slice(eq + 1)
      }
    }
    if (keyword === 'EXPOSE') info.expose.push(...ins.getArguments().map((a) => Number(a.getValue().split('/')[0])))
    if (keyword === 'ENTRYPOINT') info.entrypoint = execForm(args)
    if (keyword === 'CMD') info.cmd = execForm(args)
    if (keyword === 'HEALTHCHECK') info.healthcheck = args
    if (keyword === 'STOPSIGNAL') info.stopSignal = args.trim()
    if (keyword === 'USER') info.user = args.trim()
    const text = ins.getTextContent().replace(/\\\r?\n\s*/g, ' ')
    if (keyword === 'COPY' && /--from=build\b/.test(text)) {
      const words = text.split(/\s+/).slice(1).filter((w) => w && !w.startsWith('--'))
      info.copiesFromBuild.push({ from: words[0]!, to: words[1]! })
    }
  })
  return info
}

/** A RUN line split into words (the lines this reads use no quoting). */
export function words (command: string): string[] {
  if (/["'`$\\]/.test(command)) throw new Error(`a command with shell quoting or expansion: ${command}`)
  return command.split(/\s+/).filter(Boolean)
}
