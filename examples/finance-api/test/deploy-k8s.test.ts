import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'
import { Job } from 'kubernetes-models/batch/v1/Job'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Namespace } from 'kubernetes-models/v1/Namespace'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount'
import t from 'tap'
import ts from 'typescript'
import { parse } from 'yaml'
import { find, K8S_DIR, loadKustomization, yamlDocuments, yamlFilesIn, type Obj } from './deploy-files.js'

/** The API objects the manifests may contain, by apiVersion/kind, each with the API's OpenAPI schema behind validate(). */
const MODELS: Record<string, new (data: any) => { validate (): void }> = {
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'batch/v1/Job': Job,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'networking.k8s.io/v1/Ingress': Ingress,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount
}

/** Throws unless `o` is a known kind valid against its Kubernetes API schema. */
function validate (o: Obj): void {
  const key = `${o.apiVersion}/${o.kind}`
  const Model = MODELS[key]
  if (!Model) throw new Error(`${key} is not a kind these manifests are checked for`)
  if (typeof o.metadata?.name !== 'string') throw new Error(`${key} has no metadata.name`)
  new Model(o).validate()
}

/**
 * Unknown fields (`readinesProbe`): the API schemas allow any extra property,
 * and a real API server only warns (or, with strict validation, refuses).
 * TypeScript's excess-property check against kubernetes-models' interfaces
 * catches them: each object becomes a typed object literal, compiled in memory.
 * Returns one message per unknown or mistyped field, naming the object.
 */
function unknownFields (objects: Obj[]): string[] {
  const file = fileURLToPath(new URL('./__deploy_k8s_fields.ts', import.meta.url))
  const lines = objects.map((o, i) => {
    const [group, version] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : [undefined, o.apiVersion]
    const module = `kubernetes-models/${group ? `${group}/` : ''}${version}/${o.kind}`
    return `import type { I${o.kind} as T${i} } from '${module}'\nexport const o${i}: T${i} = ${JSON.stringify(o)}`
  })
  const source = lines.join('\n') + '\n'
  const host = ts.createCompilerHost({})
  const readFile = host.readFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  host.readFile = (f) => f === file ? source : readFile(f)
  host.fileExists = (f) => f === file || fileExists(f)
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022
  }, host)
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1
    const o = objects[Math.floor(line / 2)]
    return `${o ? `${o.kind} ${o.metadata?.name}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`
  })
}

const main = loadKustomization(K8S_DIR)
const migrate = loadKustomization(`${K8S_DIR}migrate/`)

t.test('every manifest is valid against the Kubernetes API schemas', async (t) => {
  for (const o of [...main.objects, ...migrate.objects]) {
    t.doesNotThrow(() => validate(o), `${o.kind} ${o.metadata?.name}`)
  }
  const example = yamlDocuments(readFileSync(`${K8S_DIR}secret.example.yaml`, 'utf8'), 'secret.example.yaml')
  t.equal(example.length, 1)
  t.doesNotThrow(() => validate(example[0]!), 'secret.example.yaml')
  t.same(main.objects.map((o) => o.kind).sort(),
    ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'Namespace', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount'])
  t.same(migrate.objects.map((o) => o.kind), ['Job'])
})

t.test('no manifest has a field the Kubernetes API does not know', async (t) => {
  const example = yamlDocuments(readFileSync(`${K8S_DIR}secret.example.yaml`, 'utf8'), 'secret.example.yaml')
  t.same(unknownFields([...main.objects, ...migrate.objects, ...example]), [])
  const typo = structuredClone(find(main.objects, 'Deployment'))
  const c = typo.spec.template.spec.containers[0]
  c.readinesProbe = c.readinessProbe
  delete c.readinessProbe
  const found = unknownFields([typo])
  t.equal(found.length, 1, 'a misspelt field is caught: the check can fail')
  t.match(found[0], /Deployment finance-api: .*readinesProbe.* does not exist in type 'IContainer'/)
})

t.test('a broken manifest is rejected: the validation can fail', async (t) => {
  const text = readFileSync(`${K8S_DIR}deployment.yaml`, 'utf8')
  t.match(text, /containerPort: 3000\n/)
  // a string where the API wants an integer, as a hand edit would write it
  const [quoted] = yamlDocuments(text.replace('containerPort: 3000\n', 'containerPort: "3000"\n'), 'deployment.yaml')
  t.throws(() => validate(quoted!), /containerPort must be integer/)
  const [grace] = yamlDocuments(text.replace(/terminationGracePeriodSeconds: \d+/, 'terminationGracePeriodSeconds: 30s'), 'deployment.yaml')
  t.throws(() => validate(grace!), /terminationGracePeriodSeconds must be integer/)
  const [noSelector] = yamlDocuments(text, 'deployment.yaml')
  delete noSelector!.spec.selector
  t.throws(() => validate(noSelector!), /selector/, 'a required field missing')
  const hpa = structuredClone(find(main.objects, 'HorizontalPodAutoscaler'))
  hpa.spec.metrics[0].resource.target.averageUtilization = '70%'
  t.throws(() => validate(hpa), /averageUtilization must be integer/)
  t.throws(() => validate({ apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler', metadata: { name: 'x' } }), /not a kind/,
    'an API version not meant here (autoscaling/v1 has no custom metrics)')
})

t.test('kustomization.yaml lists every manifest in the directory', async (t) => {
  t.same([...main.files].sort(), yamlFilesIn(K8S_DIR).filter((f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml'),
    'every manifest applied, nothing listed that does not exist (secret.example.yaml is documentation)')
  t.same(migrate.files, yamlFilesIn(`${K8S_DIR}migrate/`).filter((f) => f !== 'kustomization.yaml'))
  const images = (dir: string) => (parse(readFileSync(`${dir}kustomization.yaml`, 'utf8')) as Obj).images
  t.same(images(`${K8S_DIR}migrate/`), images(K8S_DIR), 'the migration Job runs the image the Deployment runs')
})

t.test('the objects refer to each other by names and labels that exist', async (t) => {
  const deployment = find(main.objects, 'Deployment', 'finance-api')
  const pod = deployment.spec.template
  const podLabels = pod.metadata.labels as Record<string, string>
  const selects = (selector: Obj | undefined) => Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => podLabels[k] === v)
  t.ok(selects(deployment.spec.selector), 'the Deployment selects its own pods')
  const service = find(main.objects, 'Service', 'finance-api')
  t.ok(Object.entries(service.spec.selector).every(([k, v]) => podLabels[k] === v), 'the Service selects the pods')
  t.ok(selects(find(main.objects, 'PodDisruptionBudget').spec.selector), 'the PodDisruptionBudget covers the pods')
  t.ok(selects(find(main.objects, 'NetworkPolicy').spec.podSelector), 'the NetworkPolicy covers the pods')
  t.same(find(main.objects, 'HorizontalPodAutoscaler').spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'finance-api' })
  t.notOk('replicas' in deployment.spec, 'the HPA owns the replica count')

  const container = pod.spec.containers[0]
  const portNames = (container.ports as Obj[]).map((p) => p.name)
  t.ok(portNames.includes(service.spec.ports[0].targetPort), 'the Service targets a named container port')
  for (const rule of find(main.objects, 'NetworkPolicy').spec.ingress as Obj[]) {
    for (const p of rule.ports) t.ok(portNames.includes(p.port), `the NetworkPolicy opens the container port ${p.port}`)
  }
  for (const rule of find(main.objects, 'Ingress').spec.rules as Obj[]) {
    for (const path of rule.http.paths as Obj[]) {
      t.equal(path.backend.service.name, service.metadata.name, `${path.path} goes to the Service`)
      t.ok(service.spec.ports.some((p: Obj) => p.name === path.backend.service.port.name), 'by a port the Service has')
    }
  }
  for (const ref of container.envFrom as Obj[]) {
    t.ok(main.objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name === ref.configMapRef.name), `ConfigMap ${ref.configMapRef.name} exists`)
  }
  t.equal(pod.spec.serviceAccountName, find(main.objects, 'ServiceAccount').metadata.name)
  const secretVolume = (pod.spec.volumes as Obj[]).find((v) => v.secret)
  const example = yamlDocuments(readFileSync(`${K8S_DIR}secret.example.yaml`, 'utf8'), 'secret.example.yaml')[0]!
  t.equal(secretVolume?.secret.secretName, example.metadata.name, 'the mounted Secret is the one secret.example.yaml describes')
})

t.test('pods run unprivileged, read-only, and spread', async (t) => {
  const pods = [
    ['Deployment', find(main.objects, 'Deployment').spec.template.spec],
    ['Job', find(migrate.objects, 'Job').spec.template.spec]
  ] as const
  for (const [kind, spec] of pods) {
    t.equal(spec.securityContext.runAsNonRoot, true, `${kind}: runAsNonRoot`)
    t.not(spec.securityContext.runAsUser, 0, `${kind}: not uid 0`)
    t.equal(spec.securityContext.seccompProfile?.type, 'RuntimeDefault', `${kind}: seccomp`)
    t.equal(spec.automountServiceAccountToken, false, `${kind}: no API token`)
    for (const v of (spec.volumes ?? []) as Obj[]) {
      if (v.secret) t.equal(v.secret.defaultMode, 0o440, `${kind}: secret files are r--r----- (0440, written in decimal: YAML 1.1 and 1.2 read 0440 differently)`)
    }
    for (const c of spec.containers as Obj[]) {
      t.equal(c.securityContext.allowPrivilegeEscalation, false, `${kind}/${c.name}: no privilege escalation`)
      t.equal(c.securityContext.readOnlyRootFilesystem, true, `${kind}/${c.name}: read-only root`)
      t.same(c.securityContext.capabilities.drop, ['ALL'], `${kind}/${c.name}: no capabilities`)
      t.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, `${kind}/${c.name}: resources`)
    }
  }
  const namespace = find(main.objects, 'Namespace')
  t.equal(namespace.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted')
  t.equal(namespace.metadata.name, main.namespace)
  t.ok(find(main.objects, 'Deployment').spec.template.spec.topologySpreadConstraints.length >= 1)
  t.equal(find(main.objects, 'HorizontalPodAutoscaler').spec.minReplicas >= 2, true, 'the PodDisruptionBudget can leave one serving')
})
